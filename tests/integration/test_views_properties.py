"""Properties of the views over generated histories: live = replay = time travel."""

from __future__ import annotations

import random
import uuid

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seeding import table_rows

from lifecycle import wiring
from lifecycle.contracts.inbound import decode_structured
from lifecycle.contracts.lead_events import PUBLISHED_TOPICS, LeadEvent, lead_event
from lifecycle.demo.sample import generate
from lifecycle.domain.vocabulary import Stage
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.leads import LeadsProjection
from lifecycle.projections.replay import fill_from_store
from lifecycle.projections.schema import SLOT_TABLES, STAGES, instant, live_leads
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

RULES = default_rulebook()


def recorded(tmp_path, seed: int, disorder: float) -> tuple[LeadLifecycle, ViewStore, Settings]:
    """A generated history recorded in small batches, arriving more or less out of order."""
    url = f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db"
    app = wiring.engine_at(url)
    history = generate(people=25, days=20, seed=seed)
    rng = random.Random(seed)  # noqa: S311 (arrival order must not matter)
    for i in range(len(history)):  # disorder 1.0: a full shuffle; 0.0: event-time order
        if rng.random() < disorder:
            j = rng.randrange(i, len(history))
            history[i], history[j] = history[j], history[i]
    events = [decode_structured(msgspec.json.encode(event)) for event in history]
    while events:
        size = rng.randint(1, 20)
        app.record(events[:size])
        events = events[size:]
    return app, ViewStore(url), Settings(database_url=url)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10**6),
    cuts=st.lists(st.integers(1, 50), min_size=1, max_size=6),
    remember=st.sampled_from([0, 3, 10_000]),
    disorder=st.sampled_from([0.0, 0.1, 1.0]),
    credit_every=st.sampled_from([0, 1, 3]),
)
def test_views_applied_in_any_batches_equal_a_full_replay_and_the_time_travel_fold(  # noqa: PLR0917 (hypothesis passes what it draws by name)
    tmp_path, seed, cuts, remember, disorder, credit_every
):
    app, store, config = recorded(tmp_path, seed, disorder)
    try:
        live = store.setup()
        events = published(app, config)
        rng = random.Random(seed)  # noqa: S311
        for event in rng.sample(events, len(events) // 10):  # the relay delivers at least once
            events.insert(rng.randrange(events.index(event), len(events) + 1), event)
        # Remembering some or all folds between batches changes nothing; nor does crediting
        # attribution a transaction later (every so many batches, in steps), as the worker does.
        projection = LeadsProjection(RULES, remember=remember, defer_credits=credit_every > 0)
        start = 0
        for batch, cut in enumerate([*cuts, len(events)]):  # in batches of any size
            with store.transaction() as tx:
                projection.apply(tx, live, events[start : start + cut])
            if credit_every and batch % credit_every == 0:
                with store.transaction() as tx:
                    projection.credit_due(tx, live, limit=7)
            start += cut
            if start >= len(events):
                break
        if credit_every:
            with store.transaction() as tx:
                projection.credit_due(tx, live)
        replayed = fill_from_store(app, store, RULES, config)

        assert_same_tables(store, live, replayed)
        with store.transaction() as tx:
            columns = ", ".join(f"became_{stage}_at" for stage in STAGES)
            rows = tx.rows(f"SELECT lead_id, stage, {columns} FROM {live_leads(live)} x")
        for lead_id, stage, *became in rows:
            lead = app.get_lead(uuid.UUID(lead_id))
            view = app.view(lead, as_of=view_end(app, lead))
            assert stage == view.stage.value
            assert [instant(b) for b in became] == [view.became_at(Stage(s)) for s in STAGES]
    finally:
        store.close()
        app.close()


def view_end(app: LeadLifecycle, lead) -> object:
    """The instant of the lead's last fact: time travel to it equals the live view."""
    return app.view(lead).last_fact_at


def test_a_remembered_lead_given_its_last_event_again_at_once_is_unchanged(tmp_path):
    app, store, config = recorded(tmp_path, seed=3, disorder=0.0)
    try:
        live = store.setup()
        projection = LeadsProjection(RULES, remember=10_000)
        for event in published(app, config):
            for _ in range(2):  # delivered twice, one batch each
                with store.transaction() as tx:
                    projection.apply(tx, live, [event])

        assert_same_tables(store, live, fill_from_store(app, store, RULES, config))
    finally:
        store.close()
        app.close()


def published(app: LeadLifecycle, config: Settings) -> list[LeadEvent]:
    """Every lead event the relay would publish, in the store's order."""
    events = [
        lead_event(
            app.mapper.to_domain_event(n),
            published_properties=config.published_properties,
            campaign_key=app.campaign_key,
        )
        for n in app.recorder.select_notifications(None, 10**6, topics=PUBLISHED_TOPICS)
    ]
    return [e for e in events if e is not None]


def assert_same_tables(store: ViewStore, one: str, other: str) -> None:
    with store.transaction() as tx:
        for table in (t for t in SLOT_TABLES if t != "lifecycle_offsets"):
            assert table_rows(tx, f"{table}_{one}") == table_rows(tx, f"{table}_{other}"), table
