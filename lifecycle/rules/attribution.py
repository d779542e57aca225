"""Attribution: how one lead's conversion is shared among the campaign touches that led to it.

A conversion is reaching a stage (``Conversion``), at the instant the lead first entered it.
The credited touches are the lead's touchpoints that carried a campaign (anonymous history
included), from ``lookback`` before the conversion up to its instant, in event-time order.
Every heuristic model gives them weights that sum to one; a conversion with no credited touch
goes whole to no campaign (channel ``referral`` if the lead was referred by then, else
``direct``). The data-driven model needs every lead's path at once: ``rules.markov``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from lifecycle.domain.instants import month_of
from lifecycle.domain.vocabulary import HEURISTIC_MODELS, Conversion, Model, Stage
from lifecycle.rules.fold import CampaignTouch, LeadView
from lifecycle.rules.rulebook import Rulebook

# W-shaped: each milestone touch's share, and what the other touches share between them.
MILESTONE_SHARE = 0.3
OTHERS_SHARE = 0.1
# Position-based: the first and the last touch's share each (the middle shares the rest).
END_SHARE = 0.4


def converted_at(view: LeadView, conversion: Conversion) -> datetime | None:
    """When the lead first reached the conversion's stage (sales-ready: sql or pql, earlier)."""
    return conversions(view).get(conversion)


def credited_touches(
    view: LeadView, at: datetime, lookback: timedelta
) -> tuple[CampaignTouch, ...]:
    """The campaign touches from ``lookback`` before ``at`` up to ``at`` itself."""
    earliest = at - lookback
    return tuple(t for t in view.campaign_touches if earliest <= t.at <= at)


def weights(  # noqa: PLR0913 (the milestones a model may read)
    model: Model,
    touches: Sequence[CampaignTouch],
    *,
    converted: datetime,
    lead_at: datetime | None = None,
    sales_ready: datetime | None = None,
    half_life: timedelta = timedelta(days=7),
) -> list[float]:
    """Each touch's share of one conversion under a heuristic model (they sum to one).

    ``touches`` are the credited touches, in order; ``lead_at`` and ``sales_ready`` are when
    the lead was made and became sales-ready (W-shaped reads them).
    """
    n = len(touches)
    if n == 0:
        return []
    match model:
        case Model.FIRST_TOUCH:
            found = [1.0] + [0.0] * (n - 1)
        case Model.LAST_TOUCH:
            found = [0.0] * (n - 1) + [1.0]
        case Model.LINEAR:
            found = [1.0 / n] * n
        case Model.POSITION_BASED:
            found = _position_based(n)
        case Model.TIME_DECAY:
            found = _scaled([2 ** (-(converted - t.at) / half_life) for t in touches])
        case Model.W_SHAPED:
            found = _w_shaped(touches, converted, lead_at, sales_ready)
        case Model.MARKOV:
            raise ValueError("markov credits every lead's path at once: see rules.markov")
    return found


def _position_based(n: int) -> list[float]:
    """40% to the first touch, 40% to the last, 20% shared by the middle (1: all, 2: halves)."""
    if n == 1:
        return [1.0]
    if n == 2:
        return [0.5, 0.5]
    middle = (1.0 - 2 * END_SHARE) / (n - 2)
    return [END_SHARE] + [middle] * (n - 2) + [END_SHARE]


def _w_shaped(
    touches: Sequence[CampaignTouch],
    converted: datetime,
    lead_at: datetime | None,
    sales_ready: datetime | None,
) -> list[float]:
    """30% to each milestone touch, 10% shared by the others, scaled to sum to one.

    The milestones are the first touch, the last touch at or before the lead was made, and the
    last touch at or before it became sales-ready (if it did by the conversion). A touch that
    is several milestones adds their shares; a milestone with no touch adds nothing; with no
    other touches the 10% goes unshared. Scaling then spreads what is missing in proportion.
    """
    raw = [0.0] * len(touches)
    raw[0] += MILESTONE_SHARE
    for instant in (lead_at, sales_ready if sales_ready and sales_ready <= converted else None):
        if instant is None:
            continue
        before = [i for i, t in enumerate(touches) if t.at <= instant]
        if before:
            raw[before[-1]] += MILESTONE_SHARE
    others = [i for i, share in enumerate(raw) if share == 0.0]
    for i in others:
        raw[i] = OTHERS_SHARE / len(others)
    return _scaled(raw)


def _scaled(raw: list[float]) -> list[float]:
    total = sum(raw)
    return [share / total for share in raw]


def fallback_channel(view: LeadView, at: datetime) -> str:
    """The channel a conversion with no credited touch goes to."""
    return "referral" if view.referred_at is not None and view.referred_at <= at else "direct"


class Credit(msgspec.Struct, frozen=True, gc=False):
    """The shares of one lead's conversion each heuristic model gives to a campaign.

    ``shares`` are in the order of ``HEURISTIC_MODELS``. ``campaign`` None: the conversion had
    no credited touch. ``month`` is that of the credited touches (of the conversion, for no
    campaign).
    """

    conversion: Conversion
    converted_at: datetime
    campaign: str | None
    channel: str
    month: str
    shares: tuple[float, ...]


class Path(msgspec.Struct, frozen=True, gc=False):
    """The campaign touches a lead went through, for the data-driven model.

    Converted: the credited touches up to the conversion, dated on the conversion. Not
    converted: the touches within the lookback before its latest one, dated on the first of
    them (so that a later touch only adds a move at the end).
    """

    conversion: Conversion
    touches: tuple[CampaignTouch, ...]
    converted: bool
    dated_at: datetime


def conversions(view: LeadView) -> dict[Conversion, datetime]:
    """When the lead made each conversion it made (as ``converted_at``, in one pass)."""
    entered: dict[Stage, datetime] = {}
    for move in view.history:
        entered.setdefault(move.stage, move.entered_at)
    found = {
        conversion: entered[stage]
        for conversion, stage in (
            (Conversion.LEAD, Stage.LEAD),
            (Conversion.MQL, Stage.MQL),
            (Conversion.CUSTOMER, Stage.CUSTOMER),
        )
        if stage in entered
    }
    ready = [entered[stage] for stage in (Stage.SQL, Stage.PQL) if stage in entered]
    if ready:
        found[Conversion.SQL] = min(ready)
    return found


_ALL = (1.0,) * len(HEURISTIC_MODELS)


def shares(view: LeadView, rules: Rulebook) -> list[Credit]:
    """Every heuristic model's credit for each conversion the lead made, per campaign and month.

    Shares of one campaign, channel and month are summed: each conversion's shares sum to one
    under each model.
    """
    found: list[Credit] = []
    if not view.is_lead:
        return found
    made = conversions(view)
    lead_at, ready_at = made.get(Conversion.LEAD), made.get(Conversion.SQL)
    for conversion, at in made.items():
        touches = credited_touches(view, at, rules.lookback)
        if len(touches) <= 1:  # every model gives it all to the one touch (or to none)
            touch = touches[0] if touches else None
            found.append(
                Credit(
                    conversion,
                    at,
                    touch.campaign if touch else None,
                    touch.channel if touch else fallback_channel(view, at),
                    month_of(touch.at if touch else at),
                    _ALL,
                )
            )
            continue
        groups: dict[tuple[str, str, str], list[float]] = {}
        keys = [(t.campaign, t.channel, month_of(t.at)) for t in touches]
        for m, model in enumerate(HEURISTIC_MODELS):
            given = weights(
                model,
                touches,
                converted=at,
                lead_at=lead_at,
                sales_ready=ready_at,
                half_life=rules.time_decay_half_life,
            )
            for key, share in zip(keys, given, strict=True):
                groups.setdefault(key, [0.0] * len(HEURISTIC_MODELS))[m] += share
        found.extend(
            Credit(conversion, at, campaign, channel, month, tuple(given))
            for (campaign, channel, month), given in groups.items()
        )
    return found


def paths(view: LeadView, rules: Rulebook) -> list[Path]:
    """The lead's path for each conversion (none without campaign touches in the window)."""
    found: list[Path] = []
    if not view.is_lead or not view.campaign_touches:
        return found
    made = conversions(view)
    last = view.campaign_touches[-1].at
    open_touches = credited_touches(view, last, rules.lookback)
    for conversion in Conversion:
        at = made.get(conversion)
        if at is not None:
            touches = credited_touches(view, at, rules.lookback)
            if touches:
                found.append(Path(conversion, touches, converted=True, dated_at=at))
        else:
            found.append(
                Path(conversion, open_touches, converted=False, dated_at=open_touches[0].at)
            )
    return found
