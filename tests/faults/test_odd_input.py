"""Odd input: control characters anywhere, an event the views cannot write, resends, orders."""

from __future__ import annotations

import copy
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from harness import (
    Message,
    assert_same,
    outcome,
    pipeline_settings,
    produce,
    record_clean,
    refused,
    stream,
    wait_for_outcome,
    wait_until,
    workers,
)

from consumers.dead_letters import read_dead_letters
from lifecycle import wiring
from lifecycle.adapters.eventstore import count_events
from lifecycle.contracts.lead_events import LeadEvent
from lifecycle.domain.facts import Touch
from lifecycle.projections.store import ViewStore

pytestmark = pytest.mark.faults

# C0 controls, DEL, and two that are not control characters but often trip parsers.
ODD = ["\x00", "\x01", "\x09", "\x0a", "\x0d", "\x1b", "\x7f", "\u2028", "\ufeff"]
TIME = "2026-10-01T09:00:00Z"


def _event(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "base",
        "source": "https://odd.example.com",
        "type": event_type,
        "time": TIME,
        "subject": "odd",
        "datacontenttype": "application/json",
        "data": data,
    }


# Every string field of every event type, with an event that has it.
BASES: list[tuple[dict[str, Any], list[tuple[str, ...]]]] = [
    (
        _event(
            "lead.touchpoint",
            {
                "kind": "form_fill",
                "identity": {
                    "email": "odd@example.com",
                    "phone": "+44 20 7946 0000",
                    "anonymous_id": "anon-odd",
                    "customer_id": "cust-odd",
                },
                "campaign": {
                    "id": "odd-campaign",
                    "channel": "email",
                    "source": "newsletter",
                    "medium": "mail",
                },
                "profile": {
                    "first_name": "Odd",
                    "last_name": "Person",
                    "company": "Odd Ltd",
                    "country": "GB",
                },
                "properties": {"note": "hello"},
            },
        ),
        [
            ("id",),
            ("source",),
            ("subject",),
            ("datacontenttype",),
            ("type",),
            ("specversion",),
            ("time",),
            ("data", "kind"),
            ("data", "identity", "email"),
            ("data", "identity", "phone"),
            ("data", "identity", "anonymous_id"),
            ("data", "identity", "customer_id"),
            ("data", "campaign", "id"),
            ("data", "campaign", "channel"),
            ("data", "campaign", "source"),
            ("data", "campaign", "medium"),
            ("data", "profile", "first_name"),
            ("data", "profile", "last_name"),
            ("data", "profile", "company"),
            ("data", "profile", "country"),
            ("data", "properties", "note"),
        ],
    ),
    (
        _event(
            "lead.touchpoint",
            {
                "kind": "referral",
                "identity": {"email": "referred@example.com"},
                "referrer": {"email": "referrer@example.com", "customer_id": "cust-referrer"},
            },
        ),
        [("data", "referrer", "email"), ("data", "referrer", "customer_id")],
    ),
    (
        _event(
            "lead.touchpoint",
            {
                "kind": "purchase",
                "identity": {"email": "buyer@example.com"},
                "amount_minor": 1200,
                "currency": "EUR",
            },
        ),
        [("data", "currency")],
    ),
    (
        _event(
            "lead.qualification",
            {
                "identity": {"email": "assessed@example.com"},
                "need": True,
                "budget": True,
                "authority": True,
                "timeline": False,
                "assessed_by": "Sales Person",
            },
        ),
        [("data", "assessed_by")],
    ),
    (
        _event(
            "lead.disqualification",
            {"identity": {"email": "dropped@example.com"}, "reason": "no budget"},
        ),
        [("data", "reason")],
    ),
    (
        _event(
            "campaign.spend",
            {
                "campaign": {"id": "odd-spend", "channel": "email"},
                "amount_minor": 500,
                "currency": "EUR",
                "period_start": "2026-10-01",
                "period_end": "2026-10-31",
            },
        ),
        [("data", "campaign", "id"), ("data", "currency")],
    ),
]


def _set(event: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    target = event
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = value


def odd_messages() -> list[Message]:
    """One message per string field and odd character, each a CloudEvent of its own."""
    messages: list[Message] = []
    number = 0
    for base, paths in BASES:
        for path in paths:
            for character in ODD:
                number += 1
                event = copy.deepcopy(base)
                event["id"] = f"odd-{number}"
                for kind in ("email", "anonymous_id"):  # each event about a person of its own
                    identity = event["data"].get("identity", {})
                    if kind in identity:
                        identity[kind] = identity[kind].replace("odd", f"odd{number}", 1)
                original = event
                for name in path:
                    original = original[name]
                # Inside the value, so that it is neither blank nor trimmed away.
                text = str(original)
                _set(event, path, text[:1] + character + text[1:])
                messages.append((f"odd-{number}".encode(), msgspec.json.encode(event)))
    # A property whose key holds the character.
    for character in ODD:
        number += 1
        event = copy.deepcopy(BASES[0][0])
        event["id"] = f"odd-{number}"
        event["data"]["identity"] = {"email": f"key{number}@example.com"}
        event["data"]["properties"] = {f"n{character}te": "x"}
        messages.append((f"odd-{number}".encode(), msgspec.json.encode(event)))
    return messages


def unwritable_lead_event() -> tuple[bytes, bytes]:
    """A well-formed lead event the views cannot store (an amount beyond 64 bits)."""
    lead_id = uuid.uuid4()
    at = datetime(2026, 10, 2, tzinfo=UTC)
    event = LeadEvent(
        event="FactRecorded",
        aggregate="lead",
        aggregate_id=lead_id,
        version=2,
        at=at,
        fact=Touch(
            fact_id=uuid.uuid4().hex,
            at=at,
            kind="purchase",
            identified=True,
            amount_minor=2**63,
            currency="EUR",
        ),
    )
    return str(lead_id).encode(), msgspec.json.encode(event)


def test_control_characters_in_every_string_field_are_refused_or_stored_and_the_stream_goes_on(
    broker, database_url, clean_run, tmp_path
):
    odd = odd_messages()
    messages = [*stream(60, seed=5), *odd]
    random.Random(3).shuffle(messages)  # noqa: S311 (an order, not a secret)
    want = clean_run(messages)
    settings = pipeline_settings(database_url, broker.bootstrap)
    engine = wiring.engine_at(database_url)
    views = ViewStore(database_url)
    try:
        with workers() as start:
            run = start(settings, tmp_path / "run.log", "run")
            produce(broker.bootstrap, messages[: len(messages) // 2])
            # A lead event that no table can hold, among the relay's: it is parked.
            produce(broker.bootstrap, [unwritable_lead_event()], topic=settings.lead_events_topic)
            produce(broker.bootstrap, messages[len(messages) // 2 :])
            wait_for_outcome(engine, views, want, timeout=120, what="the views to catch up")
            wait_until(
                lambda: len(read_dead_letters(settings)) == refused(messages),
                timeout=30,
                what="every refused message on the dead-letter topic",
            )
            assert run.alive()
        with views.reading() as tx:
            parked = views.parked(tx)
        assert_same(outcome(engine, views), want)
        # Refused: a NUL anywhere, a control character in an id or code. Stored: the rest.
        assert 0 < refused(odd) < len(odd)
        [(topic, _, _, _, error, _)] = parked
        assert topic == settings.lead_events_topic
        assert error.startswith(("OverflowError", "NumericValueOutOfRange"))
        assert run.logged("lead_event_parked")
        shown = subprocess.run(
            [sys.executable, "-m", "lifecycle", "parked", "--json"],
            env={**os.environ, **settings.environment()},
            capture_output=True,
            text=True,
            check=True,
        )
        [listed] = [json.loads(line) for line in shown.stdout.splitlines()]
        assert listed["topic"] == settings.lead_events_topic
        assert '"amount_minor":9223372036854775808' in listed["value"]
    finally:
        views.close()
        engine.close()


@pytest.mark.parametrize("together", [False, True], ids=["apart", "in-one-batch"])
def test_a_resend_with_another_time_and_identity_is_recorded_once(open_engine, events, together):
    first = events.touchpoint("form_fill", 1, email="first@example.com", event_id="same-id")
    again = events.touchpoint("form_fill", 5, email="other@example.com", event_id="same-id")
    engine = open_engine()
    if together:
        result = engine.record(events.decode(first, again))
        assert (result.recorded, result.duplicates) == (1, 1)
    else:
        assert engine.record(events.decode(first)).recorded == 1
        assert engine.record(events.decode(again)).duplicates == 1
    reader = open_engine()  # (the store, not the writer's cache)

    assert count_events(reader.recorder, ["lifecycle:Receipt.Created.v1"]) == 1
    assert count_events(reader.recorder, ["lifecycle:Lead.FactRecorded.v1"]) == 1
    assert count_events(reader.recorder, ["lifecycle:Lead.Created.v1"]) == 1
    assert reader.resolve("email:first@example.com").facts[0].at == events.at(1)
    with pytest.raises(Exception, match="no lead has email"):
        reader.resolve("email:other@example.com")


def test_two_arrival_orders_give_the_same_views_referrals_included(database_url, tmp_path):
    messages = stream(400, seed=13)
    backwards = list(reversed(messages))
    shuffled = random.Random(1).sample(messages, len(messages))  # noqa: S311 (an order)

    forwards = record_clean(f"sqlite:///{tmp_path}/forwards.db", messages, batch=97)
    assert forwards.referrals, "the input has no referrals to prove anything with"
    for order in (backwards, shuffled):
        assert_same(record_clean(database_url, order, batch=211), forwards)
        _drop(database_url)


def _drop(database_url: str) -> None:
    """Empty the test's store for the next run (SQLite: a new file; PostgreSQL: the schema)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    schema = database_url.partition("schema=")[2]
    with psycopg.connect(database_url.partition("?")[0], autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.execute(f'CREATE SCHEMA "{schema}"')
