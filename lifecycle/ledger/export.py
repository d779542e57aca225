"""Everything the engine holds about a person, as one document (access and portability).

What ``lifecycle export`` and ``GET /api/leads/{id}/export`` answer: the person's identities,
profile and every fact in full (personal fields opened with their keys), what the rulebook
makes of them, the leads merged into theirs, and whether they were forgotten or suppressed.
After an erasure the personal fields read ``[erased]``.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from lifecycle.aggregates import Identity
from lifecycle.domain.facts import ERASED, Fact, ordered
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.ledger.erasure import person_of
from lifecycle.ledger.report import LeadReport, lead_report


class ExportedIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """One identity of the person, and whether it is suppressed."""

    kind: str
    value: str
    suppressed: bool | None
    """None once erased: the value that named the identity is gone."""


class ProfileValue(msgspec.Struct, frozen=True, kw_only=True):
    """A profile field's latest value, and when it was given."""

    value: str
    given_at: datetime


class PersonExport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything held about one person."""

    lead_id: UUID
    exported_at: datetime
    erased_at: datetime | None
    leads: list[UUID]
    """The lead that stands for the person, and the leads merged into it."""
    identities: list[ExportedIdentity]
    profile: dict[str, ProfileValue]
    facts: list[Fact]
    lifecycle: LeadReport


def export_person(engine: LeadLifecycle, reference: str, *, at: datetime) -> PersonExport:
    """The document for the person ``reference`` names (a lead id or an identity)."""
    lead = engine.resolve(reference)
    leads = person_of(engine, lead)
    identities: dict[tuple[str, str], bool | None] = {}
    for each in leads:
        for key in each.identifiers:
            if key.value == ERASED:
                identities[key.kind.value, key.value] = None
                continue
            identity = engine.get(Identity, key.identity_id)
            identities[key.kind.value, key.value] = identity is not None and identity.suppressed
    return PersonExport(
        lead_id=lead.id,
        exported_at=at,
        erased_at=lead.erased_at,
        leads=[each.id for each in leads],
        identities=[
            ExportedIdentity(kind=kind, value=value, suppressed=suppressed)
            for (kind, value), suppressed in sorted(identities.items())
        ],
        profile={
            name: ProfileValue(value=value, given_at=given)
            for name, (given, value) in sorted(lead.profile.items())
        },
        facts=ordered(lead.facts),
        lifecycle=lead_report(engine, lead, as_of=at),
    )


def encode(document: PersonExport) -> bytes:
    """The document as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(document)) + b"\n"
