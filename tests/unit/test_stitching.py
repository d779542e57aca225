"""The stitching policy alone: which lead a fact lands on, and who merges into whom (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from lifecycle.aggregates import Identity, Lead, stitching
from lifecycle.domain.facts import Touch
from lifecycle.domain.identity import IdentityKey, IdentityKind

A = TypeVar("A", Lead, Identity)
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class InMemory(stitching.Aggregates):
    """Identities and leads in a dict, as a unit of work holds them."""

    def __init__(self) -> None:
        self.aggregates: dict[UUID, Lead | Identity] = {}

    def identity(self, identity_id: UUID) -> Identity | None:
        found = self.aggregates.get(identity_id)
        return found if isinstance(found, Identity) else None

    def lead(self, lead_id: UUID) -> Lead | None:
        found = self.aggregates.get(lead_id)
        return found if isinstance(found, Lead) else None

    def add(self, aggregate: A) -> A:
        self.aggregates[aggregate.id] = aggregate
        return aggregate

    def leads(self) -> list[Lead]:
        return [a for a in self.aggregates.values() if isinstance(a, Lead)]

    def owner(self, key: IdentityKey) -> Lead | None:
        identity = self.identity(key.identity_id)
        assert identity is not None
        return stitching.live_lead(self.lead, identity.lead_id)


def email(value: str) -> IdentityKey:
    return IdentityKey.of(IdentityKind.EMAIL, value)


def cookie(value: str) -> IdentityKey:
    return IdentityKey.of(IdentityKind.ANONYMOUS, value)


def touch(fact_id: str, hours: int, *keys: IdentityKey) -> Touch:
    return Touch(
        fact_id=fact_id,
        at=MONDAY + timedelta(hours=hours),
        kind="page_view" if all(not k.identifying for k in keys) else "form_fill",
        identified=any(k.identifying for k in keys),
    )


def record(store: InMemory, fact: Touch, *keys: IdentityKey) -> bool:
    return stitching.record_fact(store, list(keys), fact, {})


def test_a_fact_nobody_claims_starts_a_new_lead_that_claims_every_key():
    store = InMemory()

    assert record(
        store,
        touch("f1", 0, email("ann@example.com"), cookie("c1")),
        email("ann@example.com"),
        cookie("c1"),
    )

    (lead,) = store.leads()
    assert lead.id == email("ann@example.com").lead_id(MONDAY)
    assert store.owner(email("ann@example.com")) is lead
    assert store.owner(cookie("c1")) is lead
    assert [f.fact_id for f in lead.facts] == ["f1"]


def test_a_visitor_who_identifies_keeps_their_lead_and_it_claims_the_new_key():
    store = InMemory()
    record(store, touch("visit", 0, cookie("c1")), cookie("c1"))
    (visitor,) = store.leads()

    record(
        store,
        touch("form", 1, cookie("c1"), email("bo@example.com")),
        cookie("c1"),
        email("bo@example.com"),
    )

    assert store.leads() == [visitor]
    assert store.owner(email("bo@example.com")) is visitor
    assert visitor.captured_at == MONDAY + timedelta(hours=1)


def test_two_leads_named_by_one_fact_merge_and_the_earliest_identified_survives():
    store = InMemory()
    record(store, touch("later", 5, email("cy@example.com")), email("cy@example.com"))
    record(store, touch("earlier", 2, email("cy@work.example")), email("cy@work.example"))
    later = store.owner(email("cy@example.com"))
    earlier = store.owner(email("cy@work.example"))

    record(
        store,
        touch("both", 6, email("cy@example.com"), email("cy@work.example")),
        email("cy@example.com"),
        email("cy@work.example"),
    )

    assert store.owner(email("cy@example.com")) is earlier
    assert later is not None
    assert later.merged_into == earlier.id
    assert {f.fact_id for f in earlier.facts} == {"earlier", "later", "both"}


def test_an_identified_lead_survives_a_merge_with_an_older_visitor():
    store = InMemory()
    record(store, touch("visit", 0, cookie("c9")), cookie("c9"))
    record(store, touch("signup", 3, email("di@example.com")), email("di@example.com"))
    identified = store.owner(email("di@example.com"))

    record(
        store,
        touch("link", 4, cookie("c9"), email("di@example.com")),
        cookie("c9"),
        email("di@example.com"),
    )

    assert store.owner(cookie("c9")) is identified


def test_a_merged_leads_identities_resolve_to_the_survivor_through_a_chain_of_merges():
    store = InMemory()
    record(store, touch("a", 1, email("a@example.com")), email("a@example.com"))
    record(store, touch("b", 2, email("b@example.com")), email("b@example.com"))
    record(store, touch("c", 3, email("c@example.com")), email("c@example.com"))
    first = store.owner(email("a@example.com"))

    record(
        store,
        touch("bc", 4, email("b@example.com"), email("c@example.com")),
        email("b@example.com"),
        email("c@example.com"),
    )
    record(
        store,
        touch("ab", 5, email("a@example.com"), email("b@example.com")),
        email("a@example.com"),
        email("b@example.com"),
    )

    for key in (email("a@example.com"), email("b@example.com"), email("c@example.com")):
        assert store.owner(key) is first
    assert {f.fact_id for f in first.facts} == {"a", "b", "c", "bc", "ab"}


def test_a_fact_already_on_the_lead_is_not_recorded_again():
    store = InMemory()
    fact = touch("once", 0, email("ed@example.com"))
    assert record(store, fact, email("ed@example.com"))

    assert not record(store, fact, email("ed@example.com"))
    (lead,) = store.leads()
    assert [f.fact_id for f in lead.facts] == ["once"]


def test_a_referrer_nobody_knows_yet_gets_a_lead_of_their_own_with_no_facts():
    store = InMemory()

    referrer = stitching.claim_referrer(store, [email("fay@example.com")], MONDAY)
    record(store, touch("own", 2, email("fay@example.com")), email("fay@example.com"))

    owner = store.owner(email("fay@example.com"))
    assert owner is not None
    assert owner.id == referrer
    assert [f.fact_id for f in owner.facts] == ["own"]
