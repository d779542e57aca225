"""Inbound CloudEvents as the domain takes them: a fact, the person's identity keys, a profile.

Pure: nothing here reads or writes. The ledger resolves the keys to leads and records the
fact (see ``lifecycle.aggregates.stitching``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifecycle.contracts import inbound
from lifecycle.domain.facts import Disqualification, Fact, Qualification, Spend, Touch
from lifecycle.domain.identity import IdentityKey, IdentityKind


@dataclass(frozen=True, slots=True)
class LeadFact:
    """A touchpoint, qualification or disqualification, and whom it is about."""

    fact: Fact
    keys: list[IdentityKey]
    """Normalized, most identifying first (the first one names a new lead)."""
    profile: dict[str, Any] = field(default_factory=dict)
    referrer: list[IdentityKey] | None = None
    """The referring person's keys (a referral): their lead gets the credit."""


@dataclass(frozen=True, slots=True)
class CampaignSpend:
    """What a campaign cost over a period."""

    campaign_key: str
    spend: Spend


def translate(event: inbound.InboundEvent, fact_id: str) -> LeadFact | CampaignSpend:
    """The fact an event states, with the event time in UTC."""
    at = event.time.astimezone(UTC)
    if isinstance(event, inbound.SpendEvent):
        return CampaignSpend(event.data.campaign.id, _spend(event.data, at, fact_id))
    keys = identity_keys(event.data.identity)
    identified = any(key.identifying for key in keys)
    if isinstance(event, inbound.TouchpointEvent):
        data = event.data
        return LeadFact(
            fact=_touch(data, at, fact_id, identified=identified),
            keys=keys,
            profile=_profile(data.profile),
            referrer=None if data.referrer is None else identity_keys(data.referrer),
        )
    if isinstance(event, inbound.QualificationEvent):
        qualification = event.data
        fact: Fact = Qualification(
            fact_id=fact_id,
            at=at,
            identified=identified,
            need=qualification.need,
            budget=qualification.budget,
            authority=qualification.authority,
            timeline=qualification.timeline,
            assessed_by=qualification.assessed_by,
        )
    else:
        fact = Disqualification(
            fact_id=fact_id, at=at, identified=identified, reason=event.data.reason
        )
    return LeadFact(fact=fact, keys=keys)


def identity_keys(identity: inbound.Identity | inbound.Referrer) -> list[IdentityKey]:
    """Normalized keys, most identifying first (the first one names a new lead)."""
    raw = [
        (IdentityKind.EMAIL, identity.email),
        (IdentityKind.PHONE, getattr(identity, "phone", None)),
        (IdentityKind.CUSTOMER, identity.customer_id),
        (IdentityKind.ANONYMOUS, getattr(identity, "anonymous_id", None)),
    ]
    keys = [IdentityKey.of(kind, value) for kind, value in raw if value]
    return [key for key in keys if key.value.strip("+")]


def _touch(data: inbound.Touchpoint, at: datetime, fact_id: str, *, identified: bool) -> Touch:
    return Touch(
        fact_id=fact_id,
        at=at,
        kind=data.kind,
        identified=identified,
        campaign_id=data.campaign.id if data.campaign else None,
        channel=data.campaign.channel if data.campaign else None,
        seniority=data.profile.seniority if data.profile else None,
        company_size=data.profile.company_size if data.profile else None,
        amount_minor=data.amount_minor,
        currency=data.currency,
        properties=dict(data.properties),
    )


def _profile(profile: inbound.Profile | None) -> dict[str, Any]:
    if profile is None:
        return {}
    return {
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "company": profile.company,
        "country": profile.country,
    }


def _spend(data: inbound.Spend, at: datetime, fact_id: str) -> Spend:
    return Spend(
        fact_id=fact_id,
        at=at,
        amount_minor=data.amount_minor,
        currency=data.currency,
        period_start=data.period_start,
        period_end=data.period_end,
        channel=data.campaign.channel,
    )
