"""Facts: what happened to a lead, free of personal data. The rulebook folds these.

Facts are immutable values recorded inside Lead events. They carry the event time (the
CloudEvent ``time``), never the arrival time, so the fold is independent of arrival order.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec

PropertyValue = str | int | float | bool

# What a personal value reads as once its person was forgotten.
ERASED = "[erased]"
# What the fold reads of a touchpoint's properties (lifecycle/projections/leads.py): never
# personal, kept when the rest is erased.
RULES_PROPERTIES = frozenset({"sales_contacted"})


# Facts are values that never hold a reference back to anything holding them (no cycles), so
# the garbage collector need not track them: fewer objects to walk in caches full of facts.


class Touch(msgspec.Struct, frozen=True, kw_only=True, tag="touch", gc=False):
    """A touchpoint: the lead did something (visited, signed up, bought...)."""

    fact_id: str
    at: datetime
    kind: str
    identified: bool
    """The touchpoint carried an e-mail, phone or customer id (not only an anonymous id)."""
    campaign_id: str | None = None
    channel: str | None = None
    seniority: str | None = None
    company_size: int | None = None
    referrer_lead_id: UUID | None = None
    amount_minor: int | None = None
    currency: str | None = None
    properties: dict[str, PropertyValue] = {}


class Qualification(msgspec.Struct, frozen=True, kw_only=True, tag="qualification", gc=False):
    """Sales assessed the lead by BANT (budget, authority, need, timeline)."""

    fact_id: str
    at: datetime
    identified: bool
    need: bool
    budget: bool
    authority: bool
    timeline: bool
    assessed_by: str | None = None

    @property
    def criteria_met(self) -> int:
        """How many of the four BANT criteria hold."""
        return sum((self.need, self.budget, self.authority, self.timeline))


class Disqualification(msgspec.Struct, frozen=True, kw_only=True, tag="disqualification", gc=False):
    """Sales decided the lead is not worth pursuing."""

    fact_id: str
    at: datetime
    identified: bool
    reason: str


Fact = Touch | Qualification | Disqualification


class Spend(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Money spent on a campaign over a period."""

    fact_id: str
    at: datetime
    amount_minor: int
    currency: str
    period_start: date
    period_end: date
    channel: str


def ordered(facts: list[Fact]) -> list[Fact]:
    """Event-time order; ties broken by fact id so that every replica agrees."""
    return sorted(facts, key=lambda f: (f.at, f.fact_id))


def without_personal_data(fact: Fact) -> Fact:
    """The fact with its personal fields erased (the properties the rules read stay)."""
    match fact:
        case Touch() if any(name not in RULES_PROPERTIES for name in fact.properties):
            kept = {k: v if k in RULES_PROPERTIES else ERASED for k, v in fact.properties.items()}
            return msgspec.structs.replace(fact, properties=kept)
        case Qualification() if fact.assessed_by is not None:
            return msgspec.structs.replace(fact, assessed_by=ERASED)
        case Disqualification():
            return msgspec.structs.replace(fact, reason=ERASED)
    return fact
