"""A lead's story as of an instant: what ``lifecycle lead show`` and ``/api/leads/{id}`` answer.

How a terminal shows it is in ``lifecycle/cli/render.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import msgspec

from lifecycle.aggregates import Lead
from lifecycle.domain.facts import Disqualification, Fact, Qualification, Touch, ordered
from lifecycle.domain.money import money
from lifecycle.domain.vocabulary import Stage, Temperature
from lifecycle.errors import LeadNotFoundError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.rules import StageMove


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One fact as a line of the timeline; ``moved_to``: the stage it moved the lead into."""

    at: datetime
    fact_id: str
    what: str
    campaign: str | None = None
    detail: str | None = None
    moved_to: Stage | None = None


class LeadReport(msgspec.Struct, frozen=True, kw_only=True):
    """A lead folded as of an instant (``stage`` None: it had no facts yet)."""

    lead_id: UUID
    as_of: datetime
    rules_version: str
    stage: Stage | None
    temperature: Temperature | None
    fit: int
    engagement: float
    score: float
    became: dict[str, datetime]
    hot_until: datetime | None
    warm_until: datetime | None
    acquisition_campaign: str | None
    acquisition_channel: str | None
    revenue: dict[str, int]
    referrer_lead_id: UUID | None
    unsubscribed: bool
    identities: list[str]
    absorbed: list[UUID]
    stage_history: list[StageMove]
    timeline: list[TimelineEntry]


def _describe(fact: Fact, moved_to: Stage | None) -> TimelineEntry:
    if isinstance(fact, Touch):
        detail = None
        if fact.amount_minor is not None:
            detail = money(fact.amount_minor, fact.currency)
        return TimelineEntry(
            at=fact.at,
            fact_id=fact.fact_id,
            what=fact.kind,
            campaign=fact.campaign_id,
            detail=detail,
            moved_to=moved_to,
        )
    if isinstance(fact, Qualification):
        met = [
            name
            for name, ok in (
                ("budget", fact.budget),
                ("authority", fact.authority),
                ("need", fact.need),
                ("timeline", fact.timeline),
            )
            if ok
        ]
        return TimelineEntry(
            at=fact.at,
            fact_id=fact.fact_id,
            what="qualification",
            detail=f"BANT {fact.criteria_met}/4: {', '.join(met) or 'none'}",
            moved_to=moved_to,
        )
    assert isinstance(fact, Disqualification)  # noqa: S101 (Fact is a closed union)
    return TimelineEntry(
        at=fact.at,
        fact_id=fact.fact_id,
        what="disqualification",
        detail=fact.reason,
        moved_to=moved_to,
    )


def lead_report(engine: LeadLifecycle, lead: Lead, *, as_of: datetime | None = None) -> LeadReport:
    """Fold the lead as of ``as_of`` (default: now) and describe it."""
    instant = as_of or datetime.now(UTC)
    view = engine.view(lead, as_of=instant)
    moved = {move.fact_id: move.stage for move in view.history}
    return LeadReport(
        lead_id=lead.id,
        as_of=instant,
        rules_version=view.rules_version,
        stage=view.stage,
        temperature=view.temperature(instant) if view.stage else None,
        fit=view.fit,
        engagement=round(view.engagement_at(instant), 2),
        score=round(view.score_at(instant), 2),
        became={m.stage.value: m.entered_at for m in reversed(view.history)},
        hot_until=view.hot_until,
        warm_until=view.warm_until,
        acquisition_campaign=view.acquisition_campaign,
        acquisition_channel=view.acquisition_channel,
        revenue=view.revenue,
        referrer_lead_id=_live(engine, view.referrer_lead_id),
        unsubscribed=view.unsubscribed,
        identities=[str(key) for key in lead.identifiers],
        absorbed=list(lead.absorbed),
        stage_history=list(view.history),
        timeline=[
            _describe(f, moved.get(f.fact_id))
            for f in ordered([f for f in lead.facts if f.at <= instant])
        ],
    )


def _live(engine: LeadLifecycle, lead_id: UUID | None) -> UUID | None:
    """The lead now standing for ``lead_id`` (its survivor, if it was merged)."""
    if lead_id is None:
        return None
    try:
        return engine.get_lead(lead_id).id
    except LeadNotFoundError:
        return lead_id
