"""The ledger on a real event store: identity, merges, idempotency, tracking, conflicts.

Every test runs on SQLite and on PostgreSQL (a fresh schema each).
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError, Tracking

from lifecycle import wiring
from lifecycle.aggregates import Campaign, Identity, Lead
from lifecycle.domain.identity import IdentityKey, IdentityKind
from lifecycle.domain.vocabulary import Stage
from lifecycle.errors import ConfigurationError, LeadNotFoundError

CAMPAIGN = {"id": "spring-webinar", "channel": "events"}


def test_first_identified_touchpoint_captures_a_lead(engine, events):
    result = engine.record(
        events.decode(events.touchpoint("form_fill", 0, email="ann@example.com"))
    )

    lead = engine.resolve("email:ann@example.com")
    assert result.recorded == 1
    assert engine.view(lead).stage is Stage.LEAD
    assert lead.captured_at == events.at(0)


def test_the_same_cloudevent_sent_twice_is_recorded_once(open_engine, events):
    event = events.touchpoint("webinar_attended", 0, email="ann@example.com", event_id="dup-1")
    first = open_engine().record(events.decode(event))
    again_in_same_batch = open_engine().record(events.decode(event, event))
    lead = open_engine().resolve("email:ann@example.com")

    assert (first.recorded, first.duplicates) == (1, 0)
    assert (again_in_same_batch.recorded, again_in_same_batch.duplicates) == (0, 2)
    assert len(lead.facts) == 1


def test_emails_match_case_insensitively_and_phones_by_digits(engine, events):
    engine.record(
        events.decode(
            events.touchpoint(
                "form_fill", 0, email="  Ann@Example.COM ", phone="+1 (555) 010-2000"
            ),
            events.touchpoint("page_view", 1, email="ann@example.com"),
            events.touchpoint("page_view", 2, phone="15550102000"),
        )
    )

    lead = engine.resolve("email:ANN@example.com")
    assert len(lead.facts) == 3
    assert engine.resolve("phone:+1 555 010 2000").id == lead.id


def test_anonymous_visits_stay_a_visitor_until_a_form_fill_stitches_them_into_the_lead(
    engine, events
):
    engine.record(
        events.decode(
            events.touchpoint("page_view", 0, anonymous_id="cookie-1", campaign=CAMPAIGN),
            events.touchpoint("pricing_page_view", 1, anonymous_id="cookie-1"),
        )
    )
    visitor = engine.resolve("anonymous:cookie-1")
    assert engine.view(visitor).stage is Stage.VISITOR

    engine.record(
        events.decode(
            events.touchpoint("form_fill", 2, anonymous_id="cookie-1", email="bob@example.com")
        )
    )

    lead = engine.resolve("email:bob@example.com")
    view = engine.view(lead)
    assert lead.id == visitor.id
    assert view.stage is Stage.LEAD
    assert [f.kind for f in lead.facts] == ["page_view", "pricing_page_view", "form_fill"]
    assert view.acquisition_campaign == "spring-webinar"


def test_a_form_fill_naming_a_visitor_and_a_known_lead_stitches_the_visitor_into_the_lead(
    engine, events
):
    engine.record(
        events.decode(
            events.touchpoint("page_view", 5, anonymous_id="cookie-2", campaign=CAMPAIGN),
            events.touchpoint("newsletter_signup", 0, email="cy@example.com"),
        )
    )
    engine.record(
        events.decode(
            events.touchpoint("form_fill", 6, anonymous_id="cookie-2", email="cy@example.com")
        )
    )

    lead = engine.resolve("email:cy@example.com")
    (visitor_id,) = lead.absorbed
    visitor = engine.get(Lead, visitor_id)
    assert engine.resolve("anonymous:cookie-2").id == lead.id
    assert visitor.merged_into == lead.id
    assert IdentityKey(IdentityKind.ANONYMOUS, "cookie-2") in visitor.identifiers
    assert sorted(f.kind for f in lead.facts) == ["form_fill", "newsletter_signup", "page_view"]


def test_a_touchpoint_naming_two_leads_merges_them_into_the_earlier_captured(engine, events):
    engine.record(
        events.decode(
            events.touchpoint("demo_request", 3, phone="+15550109999"),
            events.touchpoint("webinar_attended", 1, email="dee@example.com"),
        )
    )
    by_phone = engine.resolve("phone:+15550109999")
    by_email = engine.resolve("email:dee@example.com")
    assert by_phone.id != by_email.id

    engine.record(
        events.decode(
            events.touchpoint("page_view", 4, email="dee@example.com", phone="+15550109999")
        )
    )

    survivor = engine.resolve("phone:+15550109999")
    merged = engine.get(Lead, by_phone.id)
    assert survivor.id == by_email.id
    assert merged.merged_into == survivor.id
    assert sorted(f.kind for f in survivor.facts) == [
        "demo_request",
        "page_view",
        "webinar_attended",
    ]
    assert engine.view(survivor).stage is Stage.SQL
    identity = engine.get(Identity, IdentityKey.of(IdentityKind.PHONE, "+15550109999").identity_id)
    assert identity.lead_id == survivor.id


def test_facts_arriving_out_of_order_give_the_same_lead_as_in_order(engine, events):
    def history(email: str, cookie: str) -> list[dict]:
        return [
            events.touchpoint("page_view", 0, anonymous_id=cookie),
            events.touchpoint(
                "form_fill",
                1,
                anonymous_id=cookie,
                email=email,
                profile={"seniority": "vp", "company_size": 400},
            ),
            events.touchpoint("webinar_attended", 2, email=email),
            events.touchpoint("trial_start", 3, email=email),
            events.touchpoint("upgrade_intent", 4, email=email),
        ]

    engine.record(events.decode(*history("eve@example.com", "c1")))
    for event in reversed(history("fin@example.com", "c2")):
        engine.record(events.decode(event))
    in_order = engine.view(engine.resolve("email:eve@example.com"))
    out_of_order = engine.view(engine.resolve("email:fin@example.com"))

    assert out_of_order.stage is Stage.PQL
    assert [(m.stage, m.entered_at, m.exited_at) for m in out_of_order.history] == [
        (m.stage, m.entered_at, m.exited_at) for m in in_order.history
    ]
    assert (out_of_order.fit, out_of_order.hot_until, out_of_order.warm_until) == (
        in_order.fit,
        in_order.hot_until,
        in_order.warm_until,
    )


def test_time_travel_shows_the_lead_as_it_was_at_an_instant(engine, events):
    engine.record(
        events.decode(
            events.touchpoint("form_fill", 0, email="fay@example.com"),
            events.touchpoint("demo_request", 10, email="fay@example.com"),
            events.touchpoint(
                "purchase", 20, email="fay@example.com", amount_minor=9900, currency="EUR"
            ),
        )
    )
    lead = engine.resolve("email:fay@example.com")

    assert engine.view(lead, as_of=events.at(5)).stage is Stage.LEAD
    assert engine.view(lead, as_of=events.at(15)).stage is Stage.SQL
    assert engine.view(lead, as_of=events.at(25)).stage is Stage.CUSTOMER
    assert engine.view(lead, as_of=events.at(25)).revenue == {"EUR": 9900}
    assert engine.view(lead, as_of=events.at(-1)).stage is None


def test_qualification_and_disqualification_apply_to_the_lead_they_name(engine, events):
    engine.record(
        events.decode(
            events.touchpoint("form_fill", 0, email="gus@example.com"),
            events.qualification(1, bant=3, email="gus@example.com"),
            events.disqualification(2, email="gus@example.com"),
        )
    )
    view = engine.view(engine.resolve("email:gus@example.com"))

    assert [m.stage for m in view.history] == [Stage.LEAD, Stage.SQL, Stage.DISQUALIFIED]


def test_a_referral_credits_the_referring_customer(engine, events):
    engine.record(
        events.decode(
            events.touchpoint(
                "purchase",
                0,
                email="hal@example.com",
                customer_id="C-1",
                amount_minor=100,
                currency="EUR",
            ),
        )
    )
    engine.record(
        events.decode(
            events.touchpoint(
                "referral", 1, email="ivy@example.com", referrer={"customer_id": "C-1"}
            ),
        )
    )
    referrer = engine.resolve("customer:C-1")
    view = engine.view(engine.resolve("email:ivy@example.com"))

    assert view.referrer_lead_id == referrer.id
    assert view.acquisition_channel == "referral"


def test_campaign_spend_is_recorded_once_per_event(open_engine, events):
    spend = events.spend("spring-webinar", 50_000, event_id="spend-1")
    open_engine().record(events.decode(spend, events.spend("spring-webinar", 20_000)))
    open_engine().record(events.decode(spend))

    campaign = open_engine().campaign("spring-webinar")
    assert isinstance(campaign, Campaign)
    assert sorted(s.amount_minor for s in campaign.spend) == [20_000, 50_000]


def test_a_batch_records_its_tracking_position_and_a_redelivered_batch_changes_nothing(
    open_engine, events
):
    batch = events.decode(
        events.touchpoint("form_fill", 0, email="jo@example.com"),
        events.touchpoint("page_view", 1, email="jo@example.com"),
    )
    tracking = Tracking("lifecycle-ingest:lead.touchpoints:0", 41)

    first = open_engine().record(batch, tracking=tracking)
    replay = open_engine()
    redelivered = replay.record(batch, tracking=tracking)

    assert first.recorded == 2
    assert redelivered.duplicates == 2
    assert replay.position("lifecycle-ingest:lead.touchpoints:0") == 41
    assert len(replay.resolve("email:jo@example.com").facts) == 2


def test_concurrent_writers_on_one_lead_conflict_and_retry_without_losing_a_fact(
    open_engine, events
):
    writer_a, writer_b = open_engine(), open_engine()
    writer_a.record(events.decode(events.touchpoint("form_fill", 0, email="kim@example.com")))
    writer_a.resolve("email:kim@example.com")  # now cached (stale after writer_b writes)

    writer_b.record(events.decode(events.touchpoint("page_view", 1, email="kim@example.com")))
    writer_a.record(events.decode(events.touchpoint("demo_request", 2, email="kim@example.com")))

    lead = open_engine().resolve("email:kim@example.com")
    assert sorted(f.kind for f in lead.facts) == ["demo_request", "form_fill", "page_view"]


def test_a_writer_whose_cache_missed_a_merge_records_on_the_survivor(open_engine, events):
    writer_a, writer_b = open_engine(), open_engine()
    writer_a.record(
        events.decode(
            events.touchpoint("page_view", 0, anonymous_id="cookie-9"),
            events.touchpoint("newsletter_signup", 1, email="di@example.com"),
        )
    )
    # writer_b stitches the visitor into the lead; writer_a still caches the visitor as live.
    writer_b.record(
        events.decode(
            events.touchpoint("form_fill", 2, anonymous_id="cookie-9", email="di@example.com")
        )
    )
    writer_a.record(
        events.decode(events.touchpoint("pricing_page_view", 3, anonymous_id="cookie-9"))
    )

    lead = open_engine().resolve("anonymous:cookie-9")
    assert lead.identifiers[0] == IdentityKey(IdentityKind.EMAIL, "di@example.com")
    assert sorted(f.kind for f in lead.facts) == [
        "form_fill",
        "newsletter_signup",
        "page_view",
        "pricing_page_view",
    ]


def test_a_batch_naming_more_aggregates_than_one_query_reads_them_all(open_engine, events):
    people = [f"p{n}@example.com" for n in range(1_200)]
    open_engine().record(
        events.decode(*(events.touchpoint("page_view", 0, email=e) for e in people))
    )
    cold = open_engine()  # nothing cached: the batch reads its 2,400 aggregates from the store
    result = cold.record(
        events.decode(*(events.touchpoint("form_fill", 1, email=e) for e in people))
    )

    assert result.recorded == 1_200
    assert {len(cold.resolve(f"email:{e}").facts) for e in people} == {2}


def test_an_unknown_lead_is_not_found_and_a_malformed_reference_is_a_mistake(engine):
    with pytest.raises(LeadNotFoundError, match="no lead has email"):
        engine.resolve("email:nobody@example.com")
    with pytest.raises(ConfigurationError, match="neither a lead id nor an identity"):
        engine.resolve("nobody")


def test_personal_data_is_stored_only_in_identifier_and_profile_events(engine, events):
    engine.record(
        events.decode(
            events.touchpoint(
                "form_fill",
                0,
                email="liz@example.com",
                phone="+15550107777",
                profile={"first_name": "Elizabeth", "last_name": "Quill", "seniority": "vp"},
            ),
            events.touchpoint(
                "referral", 1, email="max@example.com", referrer={"email": "liz@example.com"}
            ),
        )
    )
    notifications = engine.recorder.select_notifications(start=1, limit=1000)
    carrying = {
        n.topic
        for n in notifications
        for secret in (b"liz@example.com", b"5550107777", b"Elizabeth", b"Quill", b"max@example")
        if secret in n.state
    }

    assert carrying == {"lifecycle:Lead.IdentifierAdded.v1", "lifecycle:Lead.ProfileUpdated.v1"}


def test_the_same_cloudevent_naming_another_person_is_still_recorded_once(engine, events):
    first = events.touchpoint("form_fill", 0, email="ned@example.com", event_id="shared-id")
    second = events.touchpoint("form_fill", 0, email="oda@example.com", event_id="shared-id")

    engine.record(events.decode(first))
    result = engine.record(events.decode(second))

    assert (result.recorded, result.duplicates) == (0, 1)
    with pytest.raises(LeadNotFoundError):
        engine.resolve("email:oda@example.com")


def test_a_late_older_profile_value_does_not_replace_a_newer_one(engine, events):
    engine.record(
        events.decode(
            events.touchpoint("form_fill", 1, email="pam@example.com", profile={"company": "A"}),
            events.touchpoint("form_fill", 10, email="pam@example.com", profile={"company": "A"}),
        )
    )
    engine.record(
        events.decode(
            events.touchpoint("form_fill", 5, email="pam@example.com", profile={"company": "B"})
        )
    )

    assert engine.resolve("email:pam@example.com").profile["company"][1] == "A"


def test_captured_at_is_the_earliest_identifying_fact_even_when_it_arrives_late(engine, events):
    engine.record(events.decode(events.touchpoint("form_fill", 5, email="quin@example.com")))
    engine.record(events.decode(events.touchpoint("page_view", 1, email="quin@example.com")))

    assert engine.resolve("email:quin@example.com").captured_at == events.at(1)


@pytest.mark.postgres
def test_a_store_that_cannot_be_opened_leaves_no_connection_pool_running():
    with pytest.raises(OperationalError) as failure:
        wiring.engine_at("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1")

    # failure keeps the half-built application alive (its traceback); its pool must not be.
    assert "couldn't get a connection" in str(failure.value)
    assert [t.name for t in threading.enumerate() if t.name.startswith("pool-")] == []


@pytest.mark.postgres
def test_applications_opened_at_once_on_a_new_postgresql_schema_all_open(postgres_url):
    failures: list[Exception] = []

    def open_and_close() -> None:
        try:
            wiring.engine_at(postgres_url).close()
        except Exception as error:  # noqa: BLE001 (collected for the assertion)
            failures.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []


def _open_and_close(database_url: str, barrier: Any, outcomes: Any) -> None:
    barrier.wait()
    try:
        wiring.engine_at(database_url).close()
    except Exception as error:  # noqa: BLE001 (reported to the test)
        outcomes.put(f"{type(error).__name__}: {error}")
    else:
        outcomes.put("opened")


def test_processes_opening_a_new_sqlite_store_at_once_all_open(tmp_path):
    # Each start on a fresh file: six workers (ingest, relay, views...) started together.
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path}/store-{attempt}.db"
        barrier, outcomes = context.Barrier(6), context.Queue()
        processes = [
            context.Process(target=_open_and_close, args=(url, barrier, outcomes)) for _ in range(6)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)

        assert [outcomes.get(timeout=5) for _ in processes] == ["opened"] * 6
