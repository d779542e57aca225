"""Attribution answers: the conversions of a period credited to campaigns, channels or months.

Heuristic models sum the credits the views keep per conversion day (``projections.credit``).
The data-driven model (markov) solves the chain of the period's paths when asked: it is a few
milliseconds for tens of states, so the answer is as fresh as the views. Conversions with no
campaign touch in the lookback are credited to no campaign under every model.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.projections.credit import END
from lifecycle.projections.sql import Slot, Transaction
from lifecycle.rules.markov import Transitions, removals

By = Literal["campaign", "channel", "month"]

# How each grouping reads the credits and the spend.
_CREDIT_GROUP: dict[str, str] = {
    "campaign": "NULLIF(campaign, '')",
    "channel": "channel",
    "month": "month",
}
_SPEND_GROUP: dict[str, str] = {"campaign": "campaign_id", "channel": "channel", "month": "month"}


@dataclass
class Credited:
    """What a group was credited with in the period, what it cost, and what it returned."""

    group: str | None
    """The campaign, channel or month (None: conversions with no campaign touch)."""
    credit: float
    revenue_minor: dict[str, float] = field(default_factory=dict)
    spend_minor: dict[str, int] = field(default_factory=dict)
    cost_per_conversion: dict[str, float] = field(default_factory=dict)
    roi: dict[str, float] = field(default_factory=dict)
    """(revenue - spend) / spend, per currency with spend."""
    removal_effect: float | None = None
    """markov: the share of the chance to convert lost without it (by campaign or channel)."""


@dataclass(frozen=True)
class Period:
    """Conversions on days ``since`` <= d < ``until`` (UTC); None: open."""

    since: date | None = None
    until: date | None = None

    def where(self, column: str) -> tuple[str, list[object]]:
        """A condition on a date column, and its values."""
        conditions: list[str] = ["1 = 1"]
        values: list[object] = []
        if self.since is not None:
            conditions.append(f"{column} >= ?")
            values.append(self.since)
        if self.until is not None:
            conditions.append(f"{column} < ?")
            values.append(self.until)
        return " AND ".join(conditions), values


@dataclass(frozen=True)
class Question:
    """Which conversions are credited (those in ``period``), and to what (``by``)."""

    conversion: Conversion
    by: By = "campaign"
    period: Period = field(default_factory=Period)


@dataclass
class Attribution:
    """The credited conversions of a period under one model, by group."""

    model: str
    by: str
    conversion: str
    conversions: int
    """Conversions in the period: the credits of all groups sum to it."""
    items: list[Credited]


def attribution(tx: Transaction, slot: Slot, model: Model, question: Question) -> Attribution:
    """The period's conversions credited under ``model``, per group, with spend and ROI."""
    if model is Model.MARKOV:
        credited = _markov(tx, slot, question)
    else:
        credited = _heuristic(tx, slot, model, question)
    _add_spend(tx, slot, credited, question)
    # A group this model credits nothing and that spent nothing is no row (its zero is only
    # there because another model credits it).
    credited = {
        group: item for group, item in credited.items() if round(item.credit, 6) or item.spend_minor
    }
    for item in credited.values():
        item.credit = round(item.credit, 6)
        item.revenue_minor = {
            c: round(v, 2) for c, v in sorted(item.revenue_minor.items()) if round(v, 2)
        }
        item.cost_per_conversion = {
            c: round(spend / item.credit, 2)
            for c, spend in item.spend_minor.items()
            if item.credit > 0
        }
        item.roi = {
            c: round((item.revenue_minor.get(c, 0.0) - spend) / spend, 6)
            for c, spend in item.spend_minor.items()
            if spend > 0
        }
    return Attribution(
        model=model.value,
        by=question.by,
        conversion=question.conversion.value,
        conversions=conversions(tx, slot, question),
        items=sorted(credited.values(), key=lambda i: (i.group is None, i.group or "")),
    )


def conversions(tx: Transaction, slot: Slot, question: Question) -> int:
    """How many leads converted in the period (first touch gives each one whole credit)."""
    where, values = question.period.where("converted_on")
    found = tx.value(
        f"SELECT SUM({Model.FIRST_TOUCH}) FROM lifecycle_attribution_{slot} "
        f"WHERE conversion = ? AND {where}",
        [question.conversion.value, *values],
    )
    return round(float(found or 0))


def _heuristic(
    tx: Transaction, slot: Slot, model: Model, question: Question, *, no_campaign: bool = False
) -> dict[str | None, Credited]:
    """The credits of a heuristic model.

    ``no_campaign``: only of conversions with no campaign touch (every model credits them
    alike).
    """
    group = _CREDIT_GROUP[question.by]
    where, values = question.period.where("converted_on")
    if no_campaign:
        where += " AND campaign = ''"
    params = [question.conversion.value, *values]
    credited: dict[str | None, Credited] = {}
    for name, credit in tx.rows(
        f"SELECT {group}, SUM({model}) FROM lifecycle_attribution_{slot} "
        f"WHERE conversion = ? AND {where} GROUP BY {group}",
        params,
    ):
        credited[name] = Credited(name, float(credit))
    for name, currency, amount in tx.rows(
        f"SELECT {group}, currency, SUM({model}) FROM lifecycle_attribution_revenue_{slot} "
        f"WHERE conversion = ? AND {where} GROUP BY {group}, currency",
        params,
    ):
        item = credited.setdefault(name, Credited(name, 0.0))
        item.revenue_minor[currency] = float(amount)
    return credited


def _markov(tx: Transaction, slot: Slot, question: Question) -> dict[str | None, Credited]:
    """The chain's credit per campaign or channel.

    By month, each campaign's credit is spread over the months of its credited touches as the
    linear model spreads it.
    """
    # A campaign is read as its channel for the chain over channels (see credit.MoveRow).
    state = 1 if question.by == "channel" else 0
    where, values = question.period.where("dated_on")
    params = [question.conversion.value, *values]
    moves: dict[tuple[str, str], float] = defaultdict(float)
    ends: dict[tuple[str, bool], float] = defaultdict(float)
    for converted, *pair, paths in tx.rows(
        "SELECT converted, from_campaign, from_channel, to_campaign, to_channel, SUM(paths) "
        f"FROM lifecycle_paths_{slot} WHERE conversion = ? AND {where} "
        "GROUP BY converted, from_campaign, from_channel, to_campaign, to_channel",
        params,
    ):
        source, target = pair[state], pair[2 + state]
        if target == END:
            ends[source, bool(converted)] += float(paths)
        else:
            moves[source, target] += float(paths)
    paid: dict[tuple[str, str], float] = defaultdict(float)
    for campaign, channel, currency, amount in tx.rows(
        "SELECT last_campaign, last_channel, currency, SUM(amount_minor) "
        f"FROM lifecycle_path_revenue_{slot} WHERE conversion = ? AND {where} "
        "GROUP BY last_campaign, last_channel, currency",
        params,
    ):
        paid[(campaign, channel)[state], currency] += float(amount)
    credited: dict[str | None, Credited] = {
        r.state: Credited(
            r.state,
            r.conversions,
            {c: v for c, v in r.value.items() if v},
            removal_effect=round(r.removal_effect, 6) if question.by != "month" else None,
        )
        for r in removals(Transitions(moves, ends, paid))
    }
    if question.by == "month":
        credited = _spread_over_months(tx, slot, question, credited)
    unattributed = _heuristic(tx, slot, Model.FIRST_TOUCH, question, no_campaign=True)
    for group, item in unattributed.items():
        target = credited.setdefault(group, Credited(group, 0.0))
        target.credit += item.credit
        for currency, amount in item.revenue_minor.items():
            target.revenue_minor[currency] = target.revenue_minor.get(currency, 0.0) + amount
    return credited


def _spread_over_months(
    tx: Transaction, slot: Slot, question: Question, by_campaign: dict[str | None, Credited]
) -> dict[str | None, Credited]:
    """Each campaign's credit spread over months as the linear model spreads it.

    A campaign the linear model credits nothing in the period (it lies only on paths that did
    not convert, and the chain still finds it helps) goes to the months its paths are dated in.
    """
    where, values = question.period.where("converted_on")
    split: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for campaign, month, credit in tx.rows(
        f"SELECT campaign, month, SUM({Model.LINEAR}) FROM lifecycle_attribution_{slot} "
        f"WHERE conversion = ? AND campaign <> '' AND {where} GROUP BY campaign, month",
        [question.conversion.value, *values],
    ):
        if credit:
            split[campaign][month] += float(credit)
    dated: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    where, values = question.period.where("dated_on")
    for campaign, day, paths in tx.rows(
        f"SELECT from_campaign, dated_on, SUM(paths) FROM lifecycle_paths_{slot} "
        f"WHERE conversion = ? AND {where} GROUP BY from_campaign, dated_on",
        [question.conversion.value, *values],
    ):
        dated[campaign][str(day)[:7]] += float(paths)
    months: dict[str | None, Credited] = {}
    for campaign, item in by_campaign.items():
        shares = split.get(campaign or "") or dated[campaign or ""]
        total = sum(shares.values())
        for month, share in shares.items():
            target = months.setdefault(month, Credited(month, 0.0))
            target.credit += item.credit * share / total
            for currency, amount in item.revenue_minor.items():
                target.revenue_minor[currency] = (
                    target.revenue_minor.get(currency, 0.0) + amount * share / total
                )
    return months


def _add_spend(
    tx: Transaction, slot: Slot, credited: dict[str | None, Credited], question: Question
) -> None:
    """Spend per group and currency, of the spend reports whose period starts in the period."""
    group = _SPEND_GROUP[question.by]
    where, values = question.period.where("period_start")
    for name, currency, amount in tx.rows(
        f"SELECT {group}, currency, SUM(amount_minor) FROM lifecycle_spend_{slot} "
        f"WHERE {where} GROUP BY {group}, currency",
        values,
    ):
        item = credited.setdefault(name, Credited(name, 0.0))
        item.spend_minor[currency] = int(amount)
