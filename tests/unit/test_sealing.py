"""The leads' keys (lifecycle/adapters/keyring.py) and what is sealed with them (sealing.py)."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from lifecycle.adapters import sealing
from lifecycle.adapters.keyring import ERASED, Keyring, master_key, new_master_key
from lifecycle.aggregates.lead import Lead
from lifecycle.domain.facts import Disqualification, Qualification, Touch
from lifecycle.errors import ConfigurationError

# Fields of lead events that hold no personal data (ids, instants, kinds, codes checked by a
# pattern).
CLEAR = {
    "at",
    "fact_id",
    "kind",
    "survivor_id",
    "lead_id",
    "timestamp",
    "originator_topic",
    "reason_code",
}


def keyring() -> Keyring:
    return Keyring(master_key(new_master_key()))


def test_a_sealed_value_opens_with_its_lead_s_key_and_reads_erased_once_the_key_is_gone():
    ring, lead = keyring(), uuid4()
    sealed = ring.seal(lead, "ann@example.com")

    assert "ann" not in sealed
    assert ring.open(lead, sealed) == "ann@example.com"
    assert ring.seal(lead, "ann@example.com") != sealed  # a fresh nonce each time
    ring.erased([lead])
    assert ring.open(lead, sealed) == ERASED


def test_a_value_moved_to_another_lead_does_not_open():
    ring, ann, ben = keyring(), uuid4(), uuid4()
    sealed = ring.seal(ann, "ann@example.com")
    ring.seal(ben, "ben@example.com")

    with pytest.raises(ConfigurationError):
        ring.open(ben, sealed)


def test_a_master_key_is_checked_with_a_one_line_reason():
    for text, reason in [
        ("secret", "starts with lmk1_"),
        ("lmk1_!!!", "not base64"),
        ("lmk1_AAAA", "32 bytes"),
    ]:
        with pytest.raises(ConfigurationError, match=reason):
            master_key(text)


def test_every_lead_event_that_can_hold_personal_data_is_sealed():
    # A new event type with a free-text field must be named in sealing.py (or here, if clear).
    for event_class in vars(Lead).values():
        if not (isinstance(event_class, type) and issubclass(event_class, Aggregate.Event)):
            continue
        hints = typing.get_type_hints(event_class)
        own = {f.name for f in dataclasses.fields(event_class)} - {
            "originator_id",
            "originator_version",
        }
        unclear = {name for name in own if name not in CLEAR and hints.get(name) is not bool}
        if unclear:
            assert get_topic(event_class) in sealing.PERSONAL_TOPICS, (event_class, unclear)


def test_facts_keep_in_clear_what_the_rules_read_and_seal_the_rest():
    ring, lead = keyring(), uuid4()
    at = datetime(2026, 3, 2, tzinfo=UTC)
    facts = [
        Touch(
            fact_id="t",
            at=at,
            kind="demo_request",
            identified=True,
            campaign_id="c",
            seniority="vp",
            company_size=500,
            properties={"sales_contacted": True, "note": "call her", "visits": 3},
        ),
        Qualification(
            fact_id="q",
            at=at,
            identified=True,
            need=True,
            budget=True,
            authority=False,
            timeline=True,
            assessed_by="Sally",
        ),
        Disqualification(fact_id="d", at=at, identified=True, reason="student"),
    ]
    topic = get_topic(Lead.Absorbed)
    state = {"facts": facts}
    clear = sealing.RULES_PROPERTIES

    sealed = sealing.transform_state(
        topic, dict(state), lambda v: ring.seal(lead, v), clear, sealing=True
    )["facts"]
    opened = sealing.transform_state(
        topic, {"facts": sealed}, lambda v: ring.open(lead, v), clear, sealing=False
    )["facts"]

    touch, qualification, disqualification = sealed
    assert touch.properties["sales_contacted"] is True
    assert (touch.kind, touch.seniority, touch.company_size) == ("demo_request", "vp", 500)
    assert "call her" not in repr(sealed)
    assert "Sally" not in repr(sealed)
    assert "student" not in repr(sealed)
    assert qualification.criteria_met == 3
    assert disqualification.reason.startswith("sealed:")
    assert opened == facts


def test_a_key_forgotten_from_memory_before_it_was_written_is_still_the_same_key():
    ring = Keyring(master_key(new_master_key()), remember=2)
    first, others = uuid4(), [uuid4(), uuid4(), uuid4()]
    sealed = ring.seal(first, "ann@example.com")
    for lead in others:  # pushes the first key out of memory (the store has none yet)
        ring.seal(lead, "x")

    assert ring.open(first, sealed) == "ann@example.com"
    assert set(ring.unwritten([first, *others])) == {first, *others}


def test_keys_of_a_failed_transaction_are_forgotten_so_a_retry_reads_the_store():
    master, lead = master_key(new_master_key()), uuid4()
    ours, theirs = Keyring(master), Keyring(master)  # two writers making the same lead
    ours.seal(lead, "ours, in a transaction that failed")
    written_by_them = theirs.seal(lead, "theirs, committed")
    stored = theirs.unwritten([lead])

    ours.discard_unwritten()
    ours.read_wrapped = lambda wanted: {i: stored[i] for i in wanted if i in stored}

    assert ours.unwritten([lead]) == {}
    assert ours.open(lead, written_by_them) == "theirs, committed"
