"""Stitching: which lead a fact belongs to, and which leads are one person (no lead gets lost).

A pure domain service over the aggregates a unit of work holds (``Aggregates``): it reads and
adds identities and leads, and changes them through their own commands; saving is the caller's.

- A fact whose keys nobody claims starts a new lead, named by its first (most identifying) key
  and time; the lead claims every key.
- A fact whose keys belong to one lead lands there, and the lead claims the keys it did not
  have yet (a visitor identifies, say).
- A fact whose keys belong to several leads shows they are one person: they merge, and the most
  senior survives (identified before visitors, then the earliest captured, then by id).
- Identities of a merged lead resolve to its survivor, through chains of merges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from lifecycle.aggregates.identity import Identity
from lifecycle.aggregates.lead import Lead
from lifecycle.domain.facts import Fact
from lifecycle.domain.identity import IdentityKey
from lifecycle.errors import LifecycleError

A = TypeVar("A", Lead, Identity)


class Aggregates(Protocol):
    """The identities and leads of one unit of work."""

    def identity(self, identity_id: UUID) -> Identity | None:
        """The identity aggregate with this id, if any."""

    def lead(self, lead_id: UUID) -> Lead | None:
        """The lead with this id, if any (merged or not)."""

    def add(self, aggregate: A) -> A:
        """A new aggregate, to be saved with the rest."""


def live_lead(find: Callable[[UUID], Lead | None], lead_id: UUID) -> Lead | None:
    """The lead, or the lead it was merged into (at the end of a chain); None if missing."""
    seen: set[UUID] = set()
    lead = find(lead_id)
    while lead is not None and lead.merged_into is not None and lead.id not in seen:
        seen.add(lead.id)
        lead = find(lead.merged_into)
    return lead


def record_fact(
    aggregates: Aggregates, keys: Sequence[IdentityKey], fact: Fact, profile: dict[str, Any]
) -> bool:
    """Record the fact on the lead its keys name (new, one, or several merged); False if known."""
    owners, unclaimed, released = _claims(aggregates, keys, fact)
    if any(lead.has_fact(fact.fact_id) for lead in owners):
        return False
    if not owners:
        lead = aggregates.add(Lead(id=keys[0].lead_id(fact.at)))
    else:
        lead = merge(aggregates, owners, fact) if len(owners) > 1 else owners[0]
    for key in unclaimed:
        aggregates.add(Identity(id=key.identity_id, lead_id=lead.id))
    for identity in released:
        identity.reassign(lead.id)
    for key in keys:
        lead.add_identifier(key)
    lead.record(fact)
    if profile:
        lead.update_profile(fact.at, **profile)
    return True


def _claims(
    aggregates: Aggregates, keys: Sequence[IdentityKey], fact: Fact
) -> tuple[list[Lead], list[IdentityKey], list[Identity]]:
    """The leads the keys name, the keys nobody has, and those a forgotten person released."""
    owners: list[Lead] = []
    unclaimed: list[IdentityKey] = []
    released: list[Identity] = []
    for key in keys:
        identity = aggregates.identity(key.identity_id)
        if identity is None:
            unclaimed.append(key)
            continue
        if identity.suppressed:
            raise SuppressedError(fact.fact_id)
        if identity.lead_id is None:
            released.append(identity)  # claimed afresh
            continue
        lead = _owner(aggregates, identity)
        if all(lead is not owner for owner in owners):  # (== compares whole histories)
            owners.append(lead)
    return owners, unclaimed, released


def suppressed(aggregates: Aggregates, keys: Sequence[IdentityKey]) -> bool:
    """Whether any of the keys is a forgotten person's, suppressed."""
    for key in keys:
        identity = aggregates.identity(key.identity_id)
        if identity is not None and identity.suppressed:
            return True
    return False


def claim_referrer(
    aggregates: Aggregates, keys: Sequence[IdentityKey], at: datetime
) -> UUID | None:
    """The lead of the referring person, claimed for them now if nobody has their keys yet.

    So the credit never depends on whether the referrer's own touchpoints arrived first:
    they land on that lead (a lead with no facts, until they come), or merge with it. A
    suppressed person gets no credit, and nothing of them is recorded (None).
    """
    if suppressed(aggregates, keys):
        return None
    released: list[Identity] = []
    for key in keys:
        identity = aggregates.identity(key.identity_id)
        if identity is not None and identity.lead_id is not None:
            return _owner(aggregates, identity).id
        if identity is not None:
            released.append(identity)
    lead = aggregates.add(Lead(id=keys[0].lead_id(at)))
    for key in keys:
        if all(i.id != key.identity_id for i in released):
            aggregates.add(Identity(id=key.identity_id, lead_id=lead.id))
        lead.add_identifier(key)
    for identity in released:
        identity.reassign(lead.id)
    return lead.id


def merge(aggregates: Aggregates, leads: Sequence[Lead], cause: Fact) -> Lead:
    """One fact named several leads: they are one person. The most senior survives."""
    survivor, *others = sorted(leads, key=seniority)
    for other in others:
        survivor.absorb(other, at=cause.at, fact_id=cause.fact_id)
        other.merge_into(survivor.id, at=cause.at, fact_id=cause.fact_id)
        for key in other.identifiers:
            identity = aggregates.identity(key.identity_id)
            if identity is not None:
                identity.reassign(survivor.id)
    return survivor


def seniority(lead: Lead) -> tuple[bool, datetime, str]:
    """Identified leads before visitors, then the earliest captured, then by id (stable)."""
    first = lead.captured_at or lead.first_seen or datetime.max.replace(tzinfo=UTC)
    return (lead.captured_at is None, first, str(lead.id))


class SuppressedError(LifecycleError):
    """A fact names an identity of a person who was forgotten and suppressed: it is dropped."""


def _owner(aggregates: Aggregates, identity: Identity) -> Lead:
    if identity.lead_id is None:
        raise LifecycleError(f"identity {identity.id} names nobody")
    lead = live_lead(aggregates.lead, identity.lead_id)
    if lead is None:
        raise LifecycleError(f"identity points at missing lead {identity.lead_id}")
    return lead
