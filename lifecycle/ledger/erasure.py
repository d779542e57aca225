"""Forgetting a person: their keys destroyed, their identities released, at once.

The person is the lead a reference names (its survivor, if it was merged) and every lead merged
into it. One transaction records ``Lead.Erased`` on each, releases (or suppresses) each of their
identities and deletes their keys: killed at any point, the person is forgotten wholly or not
at all, and forgetting again changes nothing. What the rules read was never sealed, so every
figure is the same after as before, and after a replay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates import Identity, Lead
from lifecycle.domain.identity import IdentityKey
from lifecycle.errors import ConfigurationError, LeadNotFoundError

if TYPE_CHECKING:
    from lifecycle.adapters.keyring import Keyring
    from lifecycle.ledger.engine import LeadLifecycle

REASON_CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class Erasure:
    """What forgetting did."""

    lead_id: UUID | None
    """The lead that stood for the person (None: forgotten before, found by an identity)."""
    lead_ids: list[UUID]
    """Every lead of the person (the one above and those merged into it)."""
    identities: int
    """Identities released (or suppressed)."""
    already: bool
    """The person was forgotten before: nothing changed."""


def forget(
    engine: LeadLifecycle, reference: str, *, at: datetime, reason_code: str, suppress: bool
) -> Erasure:
    """Forget the person ``reference`` names (a lead id, or one of their identities)."""
    keyring = _keyring(engine, reason_code)
    try:
        survivor = engine.resolve(reference)
    except LeadNotFoundError:
        if _released(engine, reference):
            return Erasure(None, [], 0, already=True)
        raise
    leads = person_of(engine, survivor)
    if survivor.erased_at is not None:
        engine.compact_keys()
        return Erasure(survivor.id, [lead.id for lead in leads], 0, already=True)
    if engine.holds_in_clear([lead.id for lead in leads]):
        raise ConfigurationError(
            f"lead {survivor.id} holds personal data in clear (recorded before "
            "LIFECYCLE_MASTER_KEY was set, or a property published then): destroying its keys "
            "would not erase that, so nothing was done (README, Personal data)"
        )
    identities = _identities(engine, leads)
    for identity in identities:
        identity.release(suppress=suppress)
    for lead in leads:
        lead.erase(at=at, reason_code=reason_code)
    lead_ids = [lead.id for lead in leads]
    keyring.erase(lead_ids)
    changed: list[Aggregate] = [*leads, *identities]
    try:
        engine.save(*changed)  # one transaction: the events, and the keys deleted
    except BaseException:
        keyring.keep(lead_ids)
        raise
    finally:
        engine.forget_cached([a.id for a in changed])  # they held the person in clear
    engine.compact_keys()
    return Erasure(survivor.id, lead_ids, len(identities), already=False)


def _keyring(engine: LeadLifecycle, reason_code: str) -> Keyring:
    if not REASON_CODE.fullmatch(reason_code):
        raise ConfigurationError(
            f"the reason is a code (a-z, 0-9, _ . -, up to 40), not {reason_code!r}"
        )
    if engine.keyring is None:
        raise ConfigurationError(
            "this store keeps personal data in clear (it was made without LIFECYCLE_MASTER_KEY):"
            " forgetting needs it sealed"
        )
    return engine.keyring


def _identities(engine: LeadLifecycle, leads: list[Lead]) -> list[Identity]:
    """The identities that name one of these leads (or no one: released before)."""
    ids = {lead.id for lead in leads}
    found: dict[UUID, Identity] = {}
    for lead in leads:
        for key in lead.identifiers:
            identity = engine.get(Identity, key.identity_id)
            if identity is not None and (identity.lead_id is None or identity.lead_id in ids):
                found[identity.id] = identity
    return list(found.values())


def _released(engine: LeadLifecycle, reference: str) -> bool:
    """Whether the reference is an identity a forgotten person released."""
    try:
        key = IdentityKey.guess(reference)
    except ValueError:
        return False
    identity = engine.get(Identity, key.identity_id)
    return identity is not None and identity.lead_id is None


def person_of(engine: LeadLifecycle, survivor: Lead) -> list[Lead]:
    """The survivor and every lead merged into it, through chains of merges."""
    found: dict[UUID, Lead] = {survivor.id: survivor}
    todo = list(survivor.absorbed)
    while todo:
        lead_id = todo.pop()
        if lead_id in found:
            continue
        lead = engine.get(Lead, lead_id)
        if lead is not None:
            found[lead_id] = lead
            todo.extend(lead.absorbed)
    return list(found.values())
