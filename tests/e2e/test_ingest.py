"""Ingest against the real broker: both CloudEvents modes, dead letters, redelivery."""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import replace

import msgspec
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from eventsourcing.persistence import OperationalError
from kafka_testing import binary, read_topic, running, structured, wait_for

from consumers import dead_letters
from consumers.touchpoints import TouchpointIngest
from lifecycle import wiring
from lifecycle.errors import LifecycleError
from lifecycle.ledger.engine import LeadLifecycle


@pytest.fixture
def open_app(settings):
    opened: list[LeadLifecycle] = []

    def open_() -> LeadLifecycle:
        app = wiring.engine_at(settings.database_url)
        opened.append(app)
        return app

    yield open_
    for app in opened:
        app.close()


def facts_of(app: LeadLifecycle, reference: str) -> list[str]:
    try:
        return sorted(f.kind for f in app.resolve(reference).facts)
    except Exception:  # noqa: BLE001 (not there yet)
        return []


def test_touchpoints_in_both_cloudevents_modes_are_recorded(settings, produce, events, open_app):
    produce(
        [
            (b"ann", *structured(events.touchpoint("form_fill", 0, email="ann@example.com"))),
            (b"ann", *binary(events.touchpoint("demo_request", 1, email="ann@example.com"))),
            (b"spend", *binary(events.spend("spring", 120_000))),
        ]
    )
    reader = open_app()

    with running(TouchpointIngest(engine=open_app(), settings=settings)):
        wait_for(
            lambda: facts_of(reader, "email:ann@example.com") == ["demo_request", "form_fill"],
            what="both touchpoints to be recorded",
        )
        wait_for(lambda: reader.campaign("spring") is not None, what="the spend")

    assert [s.amount_minor for s in reader.campaign("spring").spend] == [120_000]


def test_bad_input_goes_to_the_dlq_with_its_reason_and_good_input_around_it_is_recorded(
    settings, produce, events, open_app
):
    good = [events.touchpoint("page_view", day, email="bo@example.com") for day in range(3)]
    oversized = events.touchpoint("page_view", 0, email="x@example.com")
    oversized["data"]["properties"] = {"blob": "x" * 300_000}
    poison = [
        (b"not-json", b"{nope", []),
        (b"not-a-cloudevent", msgspec.json.encode({"hello": "world"}), []),
        (b"unknown-type", *structured({**good[0], "id": "u1", "type": "lead.sneeze"})),
        (b"unknown-kind", *structured(events.touchpoint("sneeze", 0, email="bo@example.com"))),
        (b"invalid", *structured(events.touchpoint("page_view", 0))),
        (b"too-large", *structured(oversized)),
        (b"no-value", None, []),
    ]
    messages = []
    for index, bad in enumerate(poison):
        if index < len(good):
            messages.append((b"bo", *structured(good[index])))
        messages.append(bad)
    produce([(b"bo", b"{nope", [("trace", b"t-1")])])
    produce(messages)
    reader = open_app()

    with running(TouchpointIngest(engine=open_app(), settings=settings)):
        wait_for(
            lambda: len(facts_of(reader, "email:bo@example.com")) == 3, what="the good touchpoints"
        )
        wait_for(
            lambda: len(read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)) == 8,
            what="eight dead letters",
        )

    letters = dead_letters.read_dead_letters(settings)
    by_key = {letter.key: letter for letter in letters}
    assert set(by_key) == {b"bo", *(key for key, *_ in poison)}
    assert by_key[b"bo"].original_headers == [("trace", b"t-1")]
    assert by_key[b"not-json"].value == b"{nope"
    assert by_key[b"too-large"].reason.startswith("message is")
    assert by_key[b"unknown-kind"].reason.startswith("not an allowed value; expected one of")
    assert by_key[b"unknown-kind"].reason.endswith("(at $.data.kind)")
    assert by_key[b"no-value"].value is None
    for letter in letters:
        assert letter.original_topic == settings.touchpoints_topic
        assert letter.original_offset is not None
        assert letter.original_partition is not None
        assert letter.exception == "lifecycle.errors.ContractError"
    raw_headers = dict(letters[0].headers)
    assert set(raw_headers) >= {
        "kafka_dlt-original-topic",
        "kafka_dlt-original-partition",
        "kafka_dlt-original-offset",
        "kafka_dlt-exception-fqcn",
        "kafka_dlt-exception-message",
    }


def test_a_restarted_ingest_resumes_from_the_store_and_a_resent_event_is_recorded_once(
    settings, produce, events, open_app
):
    first = events.touchpoint("form_fill", 0, email="cy@example.com", event_id="resent")
    produce([(b"cy", *structured(first))])
    reader = open_app()
    with running(TouchpointIngest(engine=open_app(), settings=settings)):
        wait_for(lambda: facts_of(reader, "email:cy@example.com") == ["form_fill"], what="it")

    produce(
        [
            (b"cy", *structured(first)),
            (b"cy", *binary(first)),
            (b"cy", *structured(events.touchpoint("page_view", 1, email="cy@example.com"))),
        ]
    )
    with running(TouchpointIngest(engine=open_app(), settings=settings)):
        wait_for(lambda: len(facts_of(reader, "email:cy@example.com")) == 2, what="the page view")

    assert facts_of(open_app(), "email:cy@example.com") == ["form_fill", "page_view"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's lock, on purpose
def test_a_locked_database_pauses_the_partition_and_retries_without_skipping_or_losing(
    settings, produce, events, tmp_path, capsys
):
    path = tmp_path / "locked.db"
    settings = dataclasses.replace(settings, database_url=f"sqlite:///{path}?lock_timeout=1")
    ingest_app = wiring.engine_at(settings.database_url)
    produce(
        [
            (b"dee", *structured(events.touchpoint("page_view", day, email="dee@example.com")))
            for day in range(20)
        ]
    )
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with running(TouchpointIngest(engine=ingest_app, settings=settings)):
            # (Reading the positions or recording the first batch: whichever meets the lock.)
            wait_for(
                lambda: "_will_retry" in capsys.readouterr().out,
                what="a failed read or batch to be retried",
            )
            holder.execute("ROLLBACK")
            reader = wiring.engine_at(settings.database_url)
            wait_for(lambda: len(facts_of(reader, "email:dee@example.com")) == 20, what="all 20")
            reader.close()
    finally:
        holder.close()
        ingest_app.close()


class RefusesOneEvent(LeadLifecycle):
    """The real application, except that it refuses the event with id ``refused``."""

    name = LeadLifecycle.name  # the same tables (eventsourcing names them after the class)

    def record(self, events, *, tracking=None):
        if any(event.id == "refused" for event in events):
            raise LifecycleError("the application cannot record this event")
        return super().record(events, tracking=tracking)


class RefusesOneEventThenLosesTheDatabaseOnce(RefusesOneEvent):
    """As above; and the first write of a position alone (after events one by one) fails."""

    name = LeadLifecycle.name

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.blipped = False

    def record(self, events, *, tracking=None):
        if not events and tracking is not None and not self.blipped:
            self.blipped = True
            raise OperationalError("the database went away for a moment (test)")
        return super().record(events, tracking=tracking)


def test_a_retried_batch_sends_each_refused_event_to_the_dlq_once(
    settings, produce, events, open_app
):
    produce(
        [
            (b"fay", *structured(events.touchpoint("page_view", 0, email="fay@example.com"))),
            (
                b"fay",
                *structured(
                    events.touchpoint("form_fill", 1, email="fay@example.com", event_id="refused")
                ),
            ),
        ]
    )
    app = wiring.engine(settings, kind=RefusesOneEventThenLosesTheDatabaseOnce)
    reader = open_app()

    names = [f"{settings.ingest_group}:{settings.touchpoints_topic}:{p}" for p in range(3)]
    with running(TouchpointIngest(engine=app, settings=settings)):
        wait_for(
            lambda: any(reader.position(name) is not None for name in names),
            what="the batch's position, recorded by the retry",
        )
    app.close()

    assert app.blipped
    assert len(facts_of(reader, "email:fay@example.com")) == 1
    assert len(dead_letters.read_dead_letters(settings)) == 1


def test_an_event_the_application_refuses_goes_to_the_dlq_and_the_rest_is_recorded(
    settings, produce, events, open_app
):
    produce(
        [
            (b"eve", *structured(events.touchpoint("page_view", 0, email="eve@example.com"))),
            (
                b"eve",
                *structured(
                    events.touchpoint("form_fill", 1, email="eve@example.com", event_id="refused")
                ),
            ),
            (b"eve", *structured(events.touchpoint("page_view", 2, email="eve@example.com"))),
        ]
    )
    app = wiring.engine(settings, kind=RefusesOneEvent)
    reader = open_app()

    with running(TouchpointIngest(engine=app, settings=settings)):
        wait_for(lambda: len(facts_of(reader, "email:eve@example.com")) == 2, what="the others")
        wait_for(
            lambda: len(read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)) == 1,
            what="the refused event on the DLQ",
        )
    app.close()

    [letter] = dead_letters.read_dead_letters(settings)
    assert letter.exception == "lifecycle.errors.LifecycleError"
    assert letter.reason == "the application cannot record this event"


def test_a_dead_letter_topic_that_is_not_there_yet_holds_no_dead_letters(settings):
    missing = replace(settings, dead_letter_topic=f"{settings.dead_letter_topic}.never-made")

    assert dead_letters.read_dead_letters(missing) == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # about the broker only
def test_the_dead_letter_topic_is_made_with_a_retention_as_it_holds_personal_data(
    settings, produce, open_app
):
    settings = replace(
        settings, dead_letter_topic=f"{settings.dead_letter_topic}.made", dlq_retention_days=3
    )
    produce([(b"x", b"{nope", [])])

    with running(TouchpointIngest(engine=open_app(), settings=settings)):
        wait_for(lambda: len(dead_letters.read_dead_letters(settings)) == 1, what="the dead letter")

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})  # not our client
    resource = ConfigResource("topic", settings.dead_letter_topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["retention.ms"].value == str(3 * 86_400_000)
