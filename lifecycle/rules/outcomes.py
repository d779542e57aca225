"""What a lead counts for in lead quality (acquired, converted, paid), and from when to when.

Quality is asked "as of" an instant, using only the facts up to it. A lead's acquisition can
change after it became a lead: a first campaign touch or a referral that comes later names
another source (``LeadView.acquisition_as_of``). So each outcome holds for a span of time: from
when it happened (or its source took over) until its source was replaced (None: still is).
At any instant a lead counts in exactly one source.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from lifecycle.domain.vocabulary import Conversion, Stage
from lifecycle.rules.attribution import conversions
from lifecycle.rules.fold import LeadView

ACQUIRED = "lead"
"""The outcome every lead has: it was acquired (reached ``lead``)."""
PAID = "revenue"
"""The outcome of each purchase (with its currency and amount)."""
CONVERSIONS = (Conversion.MQL, Conversion.SQL, Conversion.CUSTOMER)


class Outcome(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One thing a lead counts for, in one source, while ``valid_from <= t < valid_until``."""

    kind: str
    """``lead``, a conversion (``mql``, ``sql``, ``customer``) or ``revenue``."""
    campaign: str | None
    channel: str
    acquired_at: datetime
    at: datetime
    valid_from: datetime
    valid_until: datetime | None
    currency: str | None = None
    amount_minor: int | None = None

    @property
    def days(self) -> int:
        """Days from the day of acquisition to the day it happened (UTC calendar days)."""
        return max(0, (self.at.date() - self.acquired_at.date()).days)


def outcomes(view: LeadView) -> list[Outcome]:
    """Everything the lead counts for, in each source it had (none for a visitor)."""
    acquired = view.became_at(Stage.LEAD)
    if acquired is None or not view.is_lead:
        return []
    happened: list[tuple[str, datetime, str | None, int | None]] = [
        (ACQUIRED, acquired, None, None)
    ]
    made = conversions(view)
    happened.extend((c.value, made[c], None, None) for c in CONVERSIONS if c in made)
    happened.extend((PAID, p.at, p.currency, p.amount_minor) for p in view.purchases)
    found: list[Outcome] = []
    for start, until, (campaign, channel) in _sources(view, acquired):
        for kind, at, currency, amount in happened:
            valid_from = max(at, start)
            if until is None or valid_from < until:
                found.append(
                    Outcome(
                        kind, campaign, channel, acquired, at, valid_from, until, currency, amount
                    )
                )
    return found


def _sources(
    view: LeadView, acquired: datetime
) -> list[tuple[datetime, datetime | None, tuple[str | None, str]]]:
    """The lead's sources from its acquisition on: (from, until, (campaign, channel))."""
    spans = [(acquired, view.acquisition_as_of(acquired))]
    first_campaign = view.campaign_touches[0].at if view.campaign_touches else None
    for change in sorted({at for at in (view.referred_at, first_campaign) if at}):
        source = view.acquisition_as_of(change)
        if change > acquired and source != spans[-1][1]:
            spans.append((change, source))
    ends: list[datetime | None] = [start for start, _ in spans[1:]]
    ends.append(None)
    return [(start, end, source) for (start, source), end in zip(spans, ends, strict=True)]
