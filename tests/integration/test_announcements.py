"""What the views announce (lifecycle/projections/announcer.py), against the hand-computed scenario.

On SQLite and PostgreSQL, without Kafka: the views worker's path through the broker, the
publisher and SIGKILL are in tests/e2e/test_changes.py.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import scenario

from lifecycle.contracts import changes
from lifecycle.contracts.lead_events import PUBLISHED_TOPICS, LeadEvent, lead_event
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections import outbox
from lifecycle.projections.announcer import Announcer
from lifecycle.projections.leads import LeadsProjection
from lifecycle.projections.replay import fill_from_store, swap, what_if
from lifecycle.projections.schema import instant
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook, load_rulebook
from lifecycle.settings import Settings

SALES_READY = {"sql", "pql", "service_qualified"}
CONTACTED = scenario.CONTACTED


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def announced(store: ViewStore) -> list[changes.Change]:
    with store.reading() as tx:
        return [changes.decode(c.type, c.data) for c in outbox.after(tx, 0, 1_000_000)]


def lead_ids(store: ViewStore) -> list[str]:
    with store.reading() as tx:
        slot = store.active_slot(tx)
        return [row[0] for row in tx.rows(f"SELECT lead_id FROM lifecycle_leads_{slot}")]


def stored_lead_events(engine: LeadLifecycle) -> list[LeadEvent]:
    notifications = engine.recorder.select_notifications(None, 10**6, topics=PUBLISHED_TOPICS)
    found = []
    for notification in notifications:
        event = lead_event(
            engine.mapper.to_domain_event(notification),
            published_properties=("sales_contacted",),
            campaign_key=engine.campaign_key,
        )
        if event is not None:
            found.append(event)
    return found


def test_a_whole_history_announces_each_lead_once_with_its_stage_temperature_and_overdue(
    views, engine, events
):
    end = events.at(scenario.END_DAY)
    announcer = Announcer(sla_hours=24, clock=Clock(end))
    every = lead_ids(views)
    with views.transaction() as tx:
        announcer.announce(tx, views.active_slot(tx), every)

    found = announced(views)
    leads = {k: v for k, v in scenario.EXPECTED_STAGES.items() if v != "visitor"}
    ids = {str(engine.resolve(identity).id): identity for identity in leads}
    stages = {str(c.lead_id): c for c in found if isinstance(c, changes.StageChanged)}
    assert {ids[k]: c.to.value for k, c in stages.items()} == leads
    assert all(c.from_ is None and c.observed_at == end for c in stages.values())
    temperatures = {str(c.lead_id): c for c in found if isinstance(c, changes.TemperatureChanged)}
    assert set(temperatures) == set(ids)
    for lead_id, change in temperatures.items():
        # The fold as of the end (time travel) is the oracle for the temperature now.
        assert change.to == engine.view(engine.get_lead(change.lead_id), as_of=end).temperature(
            end
        ), ids[lead_id]
    overdue = [c for c in found if isinstance(c, changes.HandoffOverdue)]
    assert {ids[str(c.lead_id)] for c in overdue} == scenario.EXPECTED_SLA_OVERDUE
    assert all(c.at == c.sales_ready_at + timedelta(hours=24) == c.due_at for c in overdue)


def test_announcing_again_what_was_announced_announces_nothing(views, events):
    announcer = Announcer(sla_hours=24, clock=Clock(events.at(scenario.END_DAY)))
    every = lead_ids(views)
    for _ in range(2):
        with views.transaction() as tx:
            announcer.announce(tx, views.active_slot(tx), every)

    found = announced(views)
    assert len({c.lead_id for c in found if isinstance(c, changes.StageChanged)}) == len(
        [c for c in found if isinstance(c, changes.StageChanged)]
    )


def test_leads_cool_down_on_a_tick_at_the_instant_they_cooled_not_when_it_was_noticed(
    views, events
):
    clock = Clock(events.at(10.5))
    announcer = Announcer(sla_hours=24, clock=clock)
    every = lead_ids(views)
    with views.transaction() as tx:
        announcer.announce(tx, views.active_slot(tx), every)
    before = len(announced(views))

    clock.now = events.at(scenario.END_DAY + 60)
    with views.transaction() as tx:
        announcer.tick(tx, views.active_slot(tx))

    cooled = [c for c in announced(views)[before:] if isinstance(c, changes.TemperatureChanged)]
    assert cooled, "some lead was warm or hot on day 10.5"
    assert all(c.to.value == "cold" and c.cause == "time" for c in cooled)
    assert all(c.at < c.observed_at == clock.now for c in cooled)
    with views.reading() as tx:
        slot = views.active_slot(tx)
        warm_until = dict(tx.rows(f"SELECT lead_id, warm_until FROM lifecycle_leads_{slot}"))
    assert all(c.at == instant(warm_until[str(c.lead_id)]) for c in cooled)


def test_a_late_sales_touch_within_the_hand_off_time_withdraws_the_overdue_hand_off(
    database_url, engine, events
):
    store = ViewStore(database_url)
    store.setup()
    announcer = Announcer(sla_hours=24, clock=Clock(events.at(2)))
    projection = LeadsProjection(default_rulebook())
    seen = 0

    def arrive(*touchpoints: dict) -> list[changes.Change]:
        nonlocal seen
        engine.record(events.decode(*touchpoints))
        new = stored_lead_events(engine)[seen:]
        seen += len(new)
        return fold(store, projection, announcer, new)

    try:
        email = "lena@example.com"
        first = arrive(
            events.touchpoint("form_fill", 0, email=email),
            events.touchpoint("demo_request", 0, email=email),
        )
        # The CRM's record of the call on day 0.5 comes in on day 2.
        late = arrive(events.touchpoint("email_open", 0.5, email=email, properties=CONTACTED))
        again = arrive(events.touchpoint("page_view", 1.5, email=email))
    finally:
        store.close()

    overdue = [c for c in first if isinstance(c, changes.HandoffOverdue)]
    assert [(c.stage.value, c.sales_ready_at) for c in overdue] == [("sql", events.at(0))]
    assert [type(c) for c in late] == [changes.HandoffOverdueWithdrawn]
    (withdrawn,) = late
    assert withdrawn.sales_ready_at == events.at(0)
    assert withdrawn.sales_touch_at == withdrawn.at == events.at(0.5)
    assert withdrawn.cause == "fact"
    assert not again


def fold(store, projection, announcer, arriving: list[LeadEvent]) -> list[changes.Change]:
    """Apply lead events in one transaction, as the views worker does; what it announced."""
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        applied = projection.apply(tx, slot, arriving)
        merges = {k: (v, applied.merged_at[k]) for k, v in applied.merged.items()}
        found = announcer.announce(tx, slot, applied.versions, merges=merges, erased=applied.erased)
        return [a.change for a in found]


def test_a_merge_whose_survivor_comes_later_is_announced_when_the_survivor_is(
    database_url, engine, events
):
    engine.record(events.decode(*scenario.history(events)))
    oli = engine.resolve("email:oli@example.com").id
    lead_events = stored_lead_events(engine)
    phone = next(e for e in lead_events if e.merged_into == oli).aggregate_id
    store = ViewStore(database_url)
    store.setup()
    announcer = Announcer(sla_hours=24, clock=Clock(events.at(scenario.END_DAY)))
    projection = LeadsProjection(default_rulebook())
    try:
        # The phone lead's events, then its merge, come before any of the survivor's, as they
        # may from another partition.
        *facts, merge = [e for e in lead_events if e.aggregate_id == phone]
        alone = fold(store, projection, announcer, facts)
        merging = fold(store, projection, announcer, [merge])
        survivor = fold(
            store, projection, announcer, [e for e in lead_events if e.aggregate_id == oli]
        )
        again = fold(
            store, projection, announcer, [e for e in lead_events if e.aggregate_id == oli]
        )
    finally:
        store.close()

    assert {c.lead_id for c in alone} == {phone}
    assert not merging  # the survivor is not known downstream yet
    merged = [c for c in survivor if isinstance(c, changes.Merged)]
    assert [(c.lead_id, c.merged_lead_ids) for c in merged] == [(oli, [phone])]
    assert merged[0].at == events.at(9)  # oli's e-mail named the phone lead on day 9
    assert isinstance(survivor[0], changes.Merged)  # before the survivor's own changes
    assert not again


def test_views_built_before_announcing_are_seeded_without_a_word_then_announce_what_changes(
    views, events
):
    clock = Clock(events.at(10.5))
    announcer = Announcer(sla_hours=24, clock=clock)

    recorded = announcer.seed(views)

    assert recorded > len(lead_ids(views)) > 0  # a stage and a temperature per lead at least
    assert announced(views) == []
    assert announcer.seed(views) == 0  # once
    clock.now = events.at(scenario.END_DAY + 60)
    with views.transaction() as tx:
        ticked = announcer.tick(tx, views.active_slot(tx))
    assert ticked
    assert {type(a.change) for a in ticked} <= {changes.TemperatureChanged, changes.HandoffOverdue}
    assert len(announced(views)) == len(ticked)


def test_two_workers_ticking_at_once_announce_each_change_once(views, events):
    Announcer(sla_hours=24, clock=Clock(events.at(10.5))).everyone(views, cause="fact")
    before = len(announced(views))
    later = Clock(events.at(scenario.END_DAY + 60))
    start = threading.Barrier(2)
    ticked: list[int] = []

    def tick() -> None:
        store = ViewStore(views.url)
        try:
            start.wait()
            with store.transaction() as tx:
                ticked.append(
                    len(Announcer(sla_hours=24, clock=later).tick(tx, store.active_slot(tx)))
                )
        finally:
            store.close()

    workers = [threading.Thread(target=tick) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)

    with views.reading() as tx:
        ids = [c.id for c in outbox.after(tx, 0, 10**6)]
    assert len(ids) == len(set(ids)), "a change was announced twice"
    assert min(ticked) == 0 < max(ticked) == len(ids) - before


def test_facts_arriving_in_event_time_announce_each_lead_s_stage_moves_with_their_instants(
    database_url, engine, events
):
    engine.record(events.decode(*scenario.history(events)))
    store = ViewStore(database_url)
    store.setup()
    clock = Clock(events.at(0))
    announcer = Announcer(sla_hours=24, clock=clock)
    projection = LeadsProjection(default_rulebook())
    try:
        for event in sorted(stored_lead_events(engine), key=lambda e: e.at):
            clock.now = max(clock.now, event.at)
            with store.transaction() as tx:
                slot = store.active_slot(tx)
                applied = projection.apply(tx, slot, [event])
                merges = {k: (v, applied.merged_at[k]) for k, v in applied.merged.items()}
                announcer.announce(tx, slot, applied.versions, merges=merges)
        found = announced(store)
    finally:
        store.close()

    checked = 0
    for identity, became in scenario.EXPECTED_BECAME.items():
        if identity in scenario.MERGED_INTO:
            continue
        lead_id = engine.resolve(identity).id
        moves = [
            (c.to.value, c.at)
            for c in found
            if isinstance(c, changes.StageChanged) and c.lead_id == lead_id
        ]
        # Stages entered on one fact are one change (state, not history): the last one wins.
        expected: dict[datetime, str] = {}
        for stage, day in sorted(became.items(), key=lambda item: item[1]):
            expected[events.at(day)] = stage
        firsts = [(s, at) for n, (s, at) in enumerate(moves) if s not in dict(moves[:n])]
        assert firsts[: len(expected)] == [(stage, at) for at, stage in sorted(expected.items())], (
            identity
        )
        checked += 1
    assert checked == len(set(scenario.EXPECTED_BECAME) - set(scenario.MERGED_INTO))


@pytest.fixture
def seeded(views, events):
    """The scenario's views with every lead's state announced at the end of the history."""
    announcer = Announcer(sla_hours=24, clock=Clock(events.at(scenario.END_DAY)))
    announcer.everyone(views, cause="fact")
    return announcer


def lower_mql(tmp_path):
    lower = tmp_path / "lower.toml"
    lower.write_text('rules_version = "lower"\n[stages]\nmql_score = 20\n')
    return load_rulebook(lower)


def test_a_replay_under_the_same_rules_announces_nothing(views, seeded, engine, database_url):
    before = announced(views)
    rules = default_rulebook()
    slot = fill_from_store(engine, views, rules, Settings(database_url=database_url))

    assert swap(views, slot, rules, announcer=seeded) == 0
    assert announced(views) == before


def test_a_replay_under_new_rules_announces_the_differences_once_as_what_if_said(
    views, seeded, engine, events, tmp_path
):
    before = len(announced(views))
    rules = lower_mql(tmp_path)
    settings = Settings(database_url=views.url)
    shadow = fill_from_store(engine, views, rules, settings)
    report = what_if(views, shadow, rules, at=events.at(scenario.END_DAY), sla_hours=24)

    count = swap(views, shadow, rules, announcer=seeded)

    new = announced(views)[before:]
    assert count == len(new) == sum(report.announcements.values()) > 0
    stages = [c for c in new if isinstance(c, changes.StageChanged)]
    assert stages
    assert all(c.cause_kind == "rules" and c.rules_version == "lower" for c in stages)
    assert all(c.to.value == "mql" for c in stages)
    moves = [f"StageChanged {c.from_.value if c.from_ else 'new'}->mql" for c in stages]
    assert report.announcements == {move: moves.count(move) for move in moves}
    again = fill_from_store(engine, views, rules, settings)
    assert swap(views, again, rules, announcer=seeded) == 0


def test_a_quiet_replay_under_new_rules_records_the_differences_without_announcing(
    views, seeded, engine, database_url, tmp_path
):
    before = announced(views)
    rules = lower_mql(tmp_path)
    shadow = fill_from_store(engine, views, rules, Settings(database_url=database_url))

    assert swap(views, shadow, rules, announcer=seeded.quietly()) == 0
    assert announced(views) == before
    back = fill_from_store(engine, views, default_rulebook(), Settings(database_url=database_url))
    assert swap(views, back, default_rulebook(), announcer=seeded) > 0  # mql -> lead again


def test_shuffled_arrival_announces_the_same_final_state_as_arrival_in_order(
    engine, events, tmp_path
):
    engine.record(events.decode(*scenario.history(events)))
    lead_events = stored_lead_events(engine)
    shuffled = scenario.interleaved(lead_events, lambda e: e.aggregate_id, seed=7)
    assert shuffled != lead_events

    def announce_all(name: str, arriving: list[LeadEvent]) -> list[tuple]:
        store = ViewStore(f"sqlite:///{tmp_path}/{name}.db")
        store.setup()
        announcer = Announcer(sla_hours=24, clock=Clock(events.at(scenario.END_DAY)))
        projection = LeadsProjection(default_rulebook())
        try:
            for start in range(0, len(arriving), 7):
                with store.transaction() as tx:
                    slot = store.active_slot(tx)
                    applied = projection.apply(tx, slot, arriving[start : start + 7])
                    merges = {k: (v, applied.merged_at[k]) for k, v in applied.merged.items()}
                    announcer.announce(tx, slot, applied.versions, merges=merges)
            with store.reading() as tx:
                return sorted(tx.rows("SELECT * FROM lifecycle_announced"))
        finally:
            store.close()

    in_order = announce_all("in-order", lead_events)
    assert len(in_order) == len([v for v in scenario.EXPECTED_STAGES.values() if v != "visitor"])
    assert announce_all("shuffled", shuffled) == in_order
