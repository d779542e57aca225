"""The fold: a lead's facts, in event-time order, to its stage, scores and temperature.

This is the only place where rules are applied. Projections, time travel (``as_of``) and
what-if replays all call it, so that they can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from lifecycle.domain.facts import Disqualification, Fact, Qualification, Touch, ordered
from lifecycle.domain.vocabulary import Stage, Temperature
from lifecycle.rules.rulebook import Rulebook

_HIGHEST_AUTOMATIC = Stage.SERVICE_QUALIFIED.rank


class StageMove(msgspec.Struct, frozen=True, kw_only=True):
    """One stage a lead was in: when it entered, when it left, and the fact that moved it."""

    stage: Stage
    entered_at: datetime
    exited_at: datetime | None
    fact_id: str


class CampaignTouch(msgspec.Struct, frozen=True, gc=False):
    """A touchpoint that carried a campaign: what attribution models credit."""

    at: datetime
    fact_id: str
    campaign: str
    channel: str
    """The campaign's channel as the touchpoint gave it (``other`` when it gave none)."""


class Purchase(msgspec.Struct, frozen=True, gc=False):
    """Money a lead paid, and when."""

    at: datetime
    currency: str
    amount_minor: int


class LeadView(msgspec.Struct, frozen=True, kw_only=True):
    """What the rulebook says about a lead after its last fact (``stage`` None: no facts)."""

    rules_version: str
    stage: Stage | None
    history: tuple[StageMove, ...]
    fit: int
    engagement: float
    """Engagement at ``engaged_at`` (the last touchpoint); it decays from there."""
    engaged_at: datetime | None
    half_life_seconds: float
    hot_until: datetime | None
    """Hot while t < hot_until (None: no hot signal and too little engagement)."""
    warm_until: datetime | None
    """The lead is at least warm while t < warm_until."""
    first_fact_at: datetime | None
    last_fact_at: datetime | None
    last_touch_at: datetime | None
    last_hand_raise_at: datetime | None
    acquisition_campaign: str | None
    acquisition_channel: str | None
    revenue: dict[str, int]
    """Purchases per currency, in minor units."""
    referrer_lead_id: UUID | None
    unsubscribed: bool
    facts: int
    campaign_touches: tuple[CampaignTouch, ...] = ()
    """Every touchpoint that carried a campaign, anonymous history included, in event order."""
    purchases: tuple[Purchase, ...] = ()
    referred_at: datetime | None = None
    """The first referral touchpoint."""

    @property
    def is_lead(self) -> bool:
        """Visitors (anonymous only) are not leads."""
        return self.stage is not None and self.stage is not Stage.VISITOR

    def engagement_at(self, at: datetime) -> float:
        """Engagement decayed to ``at`` (which must not be before the last touchpoint)."""
        if self.engaged_at is None:
            return 0.0
        elapsed = (at - self.engaged_at).total_seconds()
        return self.engagement * 2 ** (-elapsed / self.half_life_seconds)

    def score_at(self, at: datetime) -> float:
        """Fit plus decayed engagement."""
        return self.fit + self.engagement_at(at)

    def temperature(self, at: datetime) -> Temperature:
        """Hot, warm or cold at ``at`` (at or after the last fact): a comparison, no timers."""
        if self.hot_until is not None and at < self.hot_until:
            return Temperature.HOT
        if self.warm_until is not None and at < self.warm_until:
            return Temperature.WARM
        return Temperature.COLD

    def became_at(self, stage: Stage) -> datetime | None:
        """When the lead first entered ``stage``."""
        return next((m.entered_at for m in self.history if m.stage is stage), None)

    def acquisition_as_of(self, at: datetime) -> tuple[str | None, str]:
        """The campaign and channel that had acquired the lead by ``at``.

        The campaign of the earliest touchpoint that carries one; before it (or without one),
        channel ``referral`` once a referral touchpoint came, else ``direct``.
        """
        touches = self.campaign_touches
        if touches and touches[0].at <= at:
            return touches[0].campaign, touches[0].channel
        if self.referred_at is not None and self.referred_at <= at:
            return None, "referral"
        return None, "direct"


class LeadFold:
    """Folds facts one at a time; they must come in event-time order (see ``fold``)."""

    def __init__(self, rules: Rulebook) -> None:
        self.rules = rules
        self._half_life = rules.half_life.total_seconds()
        self._history: list[StageMove] = []
        self._last_key: tuple[datetime, str] | None = None
        self._first_fact_at: datetime | None = None
        self._engagement = 0.0
        self._engaged_at: datetime | None = None
        self._seniority: str | None = None
        self._company_size: int | None = None
        self._last_touch_at: datetime | None = None
        self._last_hand_raise_at: datetime | None = None
        self._last_hot_signal_at: datetime | None = None
        self._in_trial = False
        self._usages_since_trial = 0
        self._campaign_touches: list[CampaignTouch] = []
        self._purchases: list[Purchase] = []
        self._referred_at: datetime | None = None
        self._revenue: dict[str, int] = {}
        self._referrer_lead_id: UUID | None = None
        self._unsubscribed = False
        self._facts = 0

    @property
    def stage(self) -> Stage | None:
        """The current stage (None before the first fact)."""
        return self._history[-1].stage if self._history else None

    @property
    def last(self) -> tuple[datetime, str] | None:
        """The event time and id of the latest fact added (facts must come after it)."""
        return self._last_key

    def add(self, fact: Fact) -> None:
        """Apply one fact, later than (or as late as) every fact added before."""
        key = (fact.at, fact.fact_id)
        if self._last_key is not None and key < self._last_key:
            raise ValueError("facts must be added in event-time order")
        self._last_key = key
        self._facts += 1
        if self._first_fact_at is None:
            self._first_fact_at = fact.at
        if self.stage is None:
            self._move(Stage.LEAD if fact.identified else Stage.VISITOR, fact, force=True)
        elif self.stage is Stage.VISITOR and fact.identified:
            self._move(Stage.LEAD, fact)
        if isinstance(fact, Touch):
            self._touch(fact)
        elif isinstance(fact, Qualification):
            self._qualify(fact)
        else:
            self._disqualify(fact)

    def _touch(self, touch: Touch) -> None:
        self._remember(touch)
        if self.stage is not Stage.VISITOR:  # a visitor is not a lead: no moves until identified
            self._stage_moves_for(touch)

    def _remember(self, touch: Touch) -> None:
        rules = self.rules
        if touch.seniority is not None:
            self._seniority = touch.seniority
        if touch.company_size is not None:
            self._company_size = touch.company_size
        self._engagement = self._engagement_at(touch.at) + rules.engagement_points.get(
            touch.kind, 0.0
        )
        self._engaged_at = touch.at
        self._last_touch_at = touch.at
        if touch.kind in rules.hand_raises:
            self._last_hand_raise_at = touch.at
        if touch.kind in rules.hot_signals:
            self._last_hot_signal_at = touch.at
        if touch.campaign_id is not None:
            self._campaign_touches.append(
                CampaignTouch(touch.at, touch.fact_id, touch.campaign_id, touch.channel or "other")
            )
        self._remember_outcomes(touch)
        self._track_trial(touch)  # before the visitor check: an anonymous trial counts too

    def _remember_outcomes(self, touch: Touch) -> None:
        if touch.kind == "referral":
            self._referred_at = self._referred_at or touch.at
            self._referrer_lead_id = self._referrer_lead_id or touch.referrer_lead_id
        if touch.kind == "purchase" and touch.amount_minor is not None and touch.currency:
            self._revenue[touch.currency] = (
                self._revenue.get(touch.currency, 0) + touch.amount_minor
            )
            self._purchases.append(Purchase(touch.at, touch.currency, touch.amount_minor))
        if touch.kind == "unsubscribe":
            self._unsubscribed = True
        elif touch.kind == "newsletter_signup":
            self._unsubscribed = False

    def _track_trial(self, touch: Touch) -> None:
        if touch.kind == "trial_start":
            self._in_trial = True
            self._usages_since_trial = 0
        elif touch.kind == "product_usage" and self._in_trial:
            self._usages_since_trial += 1

    def _stage_moves_for(self, touch: Touch) -> None:
        rules = self.rules
        if self._fit() + self._engagement >= rules.mql_score:
            self._move(Stage.MQL, touch)
        if touch.kind in rules.hand_raises:
            self._move(Stage.SQL, touch, reenter=True)
        enough_usage = self._usages_since_trial >= rules.pql_usages_after_trial
        if self._in_trial and (
            (touch.kind == "product_usage" and enough_usage) or touch.kind == "upgrade_intent"
        ):
            self._move(Stage.PQL, touch)
        if touch.kind == "purchase":
            self._move(Stage.CUSTOMER, touch, force=self.stage is not Stage.CUSTOMER)
        elif touch.kind in {"support_upgrade_request", "upgrade_intent"} and (
            self.stage is Stage.CUSTOMER
        ):
            self._move(Stage.SERVICE_QUALIFIED, touch)

    def _qualify(self, qualification: Qualification) -> None:
        if self.stage is Stage.VISITOR:
            return
        if qualification.criteria_met >= self.rules.sql_bant_criteria:
            self._move(Stage.SQL, qualification)

    def _disqualify(self, disqualification: Disqualification) -> None:
        stage = self.stage
        if stage is not None and Stage.LEAD.rank <= stage.rank < Stage.CUSTOMER.rank:
            self._move(Stage.DISQUALIFIED, disqualification, force=True)

    def _move(
        self, stage: Stage, fact: Fact, *, force: bool = False, reenter: bool = False
    ) -> None:
        """Enter ``stage`` if the rules allow it: upward only, unless forced or re-entering."""
        current = self.stage
        if current is stage:
            return
        if not force:
            if current is Stage.DISQUALIFIED and not reenter:
                return
            upward = current is None or current is Stage.DISQUALIFIED or stage.rank > current.rank
            if not upward or stage.rank > _HIGHEST_AUTOMATIC:
                return
        if self._history:
            self._history[-1] = msgspec.structs.replace(self._history[-1], exited_at=fact.at)
        self._history.append(
            StageMove(stage=stage, entered_at=fact.at, exited_at=None, fact_id=fact.fact_id)
        )

    def _fit(self) -> int:
        return self.rules.fit_points(self._seniority, self._company_size)

    def _engagement_at(self, at: datetime) -> float:
        if self._engaged_at is None:
            return 0.0
        elapsed = (at - self._engaged_at).total_seconds()
        return self._engagement * 2 ** (-elapsed / self._half_life)

    def _until_engagement_below(self, threshold: float) -> datetime | None:
        """The instant at which decaying engagement falls below ``threshold``."""
        if self._engaged_at is None or self._engagement < threshold or threshold <= 0:
            return None
        seconds = self._half_life * math.log2(self._engagement / threshold)
        # "engagement >= threshold" holds at the crossing itself: one microsecond past it.
        return self._engaged_at + timedelta(seconds=seconds, microseconds=1)

    def view(self) -> LeadView:
        """The interpretation after every fact added so far."""
        rules = self.rules
        hot_candidates = [self._until_engagement_below(rules.hot_engagement)]
        if self._last_hot_signal_at is not None:
            hot_candidates.append(self._last_hot_signal_at + rules.hot_window)
        hot_until = max((t for t in hot_candidates if t is not None), default=None)
        warm_candidates = [hot_until, self._until_engagement_below(rules.warm_engagement)]
        warm_until = max((t for t in warm_candidates if t is not None), default=None)
        first = self._campaign_touches[0] if self._campaign_touches else None
        channel = first.channel if first else None
        if self._facts and channel is None:
            channel = "referral" if self._referred_at else "direct"
        return LeadView(
            rules_version=rules.version,
            stage=self.stage,
            history=tuple(self._history),
            fit=self._fit(),
            engagement=self._engagement,
            engaged_at=self._engaged_at,
            half_life_seconds=self._half_life,
            hot_until=hot_until,
            warm_until=warm_until,
            first_fact_at=self._first_fact_at,
            last_fact_at=self._last_key[0] if self._last_key else None,
            last_touch_at=self._last_touch_at,
            last_hand_raise_at=self._last_hand_raise_at,
            acquisition_campaign=first.campaign if first else None,
            acquisition_channel=channel,
            revenue=dict(self._revenue),
            referrer_lead_id=self._referrer_lead_id,
            unsubscribed=self._unsubscribed,
            facts=self._facts,
            campaign_touches=tuple(self._campaign_touches),
            purchases=tuple(self._purchases),
            referred_at=self._referred_at,
        )


def fold(facts: Iterable[Fact], rules: Rulebook, *, as_of: datetime | None = None) -> LeadView:
    """Fold facts (in any arrival order) into a view; with ``as_of``, only facts up to it."""
    return folded([f for f in facts if as_of is None or f.at <= as_of], rules).view()


def folded(facts: Iterable[Fact], rules: Rulebook) -> LeadFold:
    """The fold after every fact (in any arrival order), ready to take later ones."""
    folder = LeadFold(rules)
    for fact in ordered(list(facts)):
        folder.add(fact)
    return folder
