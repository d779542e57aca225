"""The shapes the API answers with (msgspec structs; the OpenAPI document is built from them)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from lifecycle.contracts.changes import Change
from lifecycle.ledger.report import TimelineEntry
from lifecycle.projections.queries import CostRow, LeadRow, Referral


class Score(msgspec.Struct, frozen=True, kw_only=True):
    """Score = fit (who they are) + engagement (what they did, decaying)."""

    total: float
    fit: int
    engagement: float


class Acquisition(msgspec.Struct, frozen=True, kw_only=True):
    """The campaign and channel that brought the lead."""

    campaign: str | None
    channel: str | None


class Lead(msgspec.Struct, frozen=True, kw_only=True):
    """A lead folded from its facts as of ``as_of``."""

    lead_id: UUID
    as_of: datetime
    rules_version: str
    stage: str | None
    temperature: str | None
    score: Score
    became: dict[str, datetime]
    hot_until: datetime | None
    warm_until: datetime | None
    acquisition: Acquisition
    revenue_minor: dict[str, int]
    referrer_lead_id: UUID | None
    unsubscribed: bool
    identities: list[str]
    merged: list[UUID]


class Timeline(msgspec.Struct, frozen=True, kw_only=True):
    """A lead's facts in event-time order, and why it has its stage."""

    lead_id: UUID
    as_of: datetime
    stage: str | None
    why: str
    entries: list[TimelineEntry]  # (lifecycle.report)


class LeadPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of leads (highest score first); pass ``next_cursor`` as ``cursor`` for the next."""

    leads: list[LeadRow]
    next_cursor: str | None


class CostAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Cost per lead and its companions per group and currency (amounts in minor units)."""

    by: str
    rows: list[CostRow]


class TemperatureAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Leads per temperature as of an instant."""

    as_of: datetime
    counts: dict[str, int]


class GroupsAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The campaigns and channels the views know: what the filters can take."""

    campaigns: list[str]
    channels: list[str]


class ReferralAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Per referring lead: leads referred, customers among them, their revenue."""

    referrers: list[Referral]


class Breach(msgspec.Struct, frozen=True, kw_only=True):
    """A sales-ready lead not contacted in time."""

    lead_id: str
    stage: str
    sales_ready_at: datetime
    first_sales_touch_at: datetime | None


class SlaAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """Sales-ready leads with no sales touch within ``within_hours``."""

    as_of: datetime
    within_hours: int
    breaches: list[Breach]


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """Whether the parts answer, and where each worker stands."""

    status: str
    checks: dict[str, str]
    positions: list[dict[str, object]]


class AnnouncedChange(msgspec.Struct, frozen=True, kw_only=True):
    """A change as announced on ``lead.lifecycle``: its place, its ``ce_id``, type and data."""

    seq: int
    id: str
    type: str
    data: Change


class ChangePage(msgspec.Struct, frozen=True, kw_only=True):
    """Announced changes, oldest first; pass ``next_after`` as ``after`` for the next page."""

    changes: list[AnnouncedChange]
    next_after: int | None


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """What erasing a person did."""

    lead_id: UUID
    leads: list[UUID]
    """Every lead of the person: this one's survivor and the leads merged into it."""
    identities: int
    """Identities released (or suppressed)."""
    already: bool
    """The person was forgotten before: nothing changed."""
