from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid5

from lifecycle.domain.identity import (
    NAMESPACE,
    IdentityKey,
    IdentityKind,
    fact_id,
    receipt_id,
    timed_id,
)

MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_fact_id_is_the_uuid5_of_its_cloudevent_source_and_id_as_stored_facts_have_it():
    for source, event_id in [("urn:forms", "1"), ("https://shop.example/é", "ü-2"), ("s", "")]:
        expected = uuid5(NAMESPACE, f"fact:{source}\x00{event_id}").hex

        assert fact_id(source, event_id) == expected


def test_timed_ids_sort_by_their_instant_whatever_their_names():
    instants = [MARCH + timedelta(milliseconds=n) for n in (0, 1, 999, 86_400_000)]
    names = ["zz", "aa", "mm", "00"]

    ids = [timed_id(at, name) for at, name in zip(instants, names, strict=True)]

    assert ids == sorted(ids)
    assert [i.hex for i in ids] == sorted(i.hex for i in ids)  # as SQLite stores them


def test_a_timed_id_is_the_same_for_the_same_instant_and_name_and_marks_itself_version_8():
    one = timed_id(MARCH, "lead:email:ada@example.com")

    assert one == timed_id(MARCH.astimezone(UTC), "lead:email:ada@example.com")
    assert one != timed_id(MARCH, "lead:email:bob@example.com")
    assert (one.version, one.variant) == (8, "specified in RFC 4122")


def test_a_receipt_id_names_the_cloudevent_by_source_and_id_only():
    assert receipt_id("urn:forms", "1") == receipt_id("urn:forms", "1")
    assert receipt_id("urn:forms", "1") != receipt_id("urn:forms", "2")
    assert receipt_id("urn:forms", "1") != receipt_id("urn:shop", "1")
    assert receipt_id("urn:forms", "1").hex == fact_id("urn:forms", "1")


def test_identity_ids_depend_on_the_normalized_key_alone():
    key = IdentityKey.of(IdentityKind.EMAIL, " Ada@Example.COM ")

    assert key.identity_id == IdentityKey.of(IdentityKind.EMAIL, "ada@example.com").identity_id
    assert key.lead_id(MARCH) != key.lead_id(MARCH + timedelta(seconds=1))
