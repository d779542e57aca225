"""Lead quality by source, as of an instant: conversion rates with intervals, cohort curves, trends.

Every answer counts the outcomes (``rules.outcomes``) that held at ``as_of``: leads acquired,
conversions and purchases up to then, each in the source the lead had then. Whole days come
from the totals the views keep (``lifecycle_outcome_totals``); only the outcomes that began or
ended on the day of ``as_of`` itself are read one by one, to compare with the instant.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple

from lifecycle.domain.statistics import (
    Comparison,
    CurvePoint,
    compare,
    kaplan_meier,
    median_day,
    wilson,
)
from lifecycle.domain.vocabulary import Conversion
from lifecycle.projections.attribution import Period
from lifecycle.projections.schema import instant
from lifecycle.projections.sql import Slot, Transaction
from lifecycle.rules.outcomes import ACQUIRED, PAID

By = Literal["campaign", "channel", "month"]
# The column of the outcomes that names a source, for each way of naming sources.
SOURCE = {"campaign": "campaign", "channel": "channel", "month": "acquired_month"}


class Key(NamedTuple):
    """Outcomes alike in everything the answers group by."""

    kind: str
    campaign: str
    """'' for no campaign."""
    channel: str
    acquired_month: str
    acquired_on: date
    days: int
    currency: str
    happened_on: date
    """The day it happened: ``acquired_on`` + ``days``."""

    def group(self, by: By) -> str | None:
        """The source it counts in, as ``by`` names sources (None: no campaign)."""
        value = {"campaign": self.campaign, "channel": self.channel}.get(by, self.acquired_month)
        return value or None


# A key's columns that an answer does not group by hold these.
_ANY = Key("", "", "", "", date.min, 0, "", date.min)
# Columns computed from the totals' own, as each database writes it.
_COMPUTED = {
    "happened_on": {
        "sqlite": "date(acquired_on, '+' || days || ' days')",
        "postgres": "acquired_on + days",
    }
}


@dataclass(frozen=True)
class Asked:
    """Leads acquired in ``period`` (days, UTC), as of ``as_of``, for ``conversion``."""

    conversion: Conversion
    as_of: datetime
    period: Period = field(default_factory=Period)


Counts = dict[Key, list[int]]
"""Outcomes -> [how many, their amount]."""


def outcome_counts(
    tx: Transaction, slot: Slot, asked: Asked, kinds: tuple[str, ...], columns: tuple[str, ...]
) -> Counts:
    """The outcomes of these kinds that held at ``asked.as_of``, summed per kind and ``columns``.

    (Grouping by no more than an answer needs keeps the totals' query and its rows few.)
    """
    counts: Counts = defaultdict(lambda: [0, 0])
    day = asked.as_of.astimezone(UTC).date()
    where, values = asked.period.where("acquired_on")
    marks = ", ".join("?" * len(kinds))
    grouped = ", ".join(("kind", *(_COMPUTED.get(c, {}).get(tx.dialect, c) for c in columns)))
    # Where each selected column goes in a key, and how it is read.
    places = [Key._fields.index(c) for c in ("kind", *columns)]
    readers = [_READ.get(c, _same) for c in ("kind", *columns)]
    template = list(_ANY)
    for *found, leads, amount in tx.rows(
        f"SELECT {grouped}, SUM(leads), SUM(amount_minor) "
        f"FROM lifecycle_outcome_totals_{slot} WHERE kind IN ({marks}) AND {where} "
        f"AND valid_from_on < ? AND valid_until_on > ? GROUP BY {grouped}",
        [*kinds, *values, day, day],
    ):
        for place, read, value in zip(places, readers, found, strict=True):
            template[place] = read(value)
        total = counts[Key._make(template)]
        total[0] += int(leads)
        total[1] += int(amount)
    midnight = datetime.combine(day, time(), UTC)
    following = midnight + timedelta(days=1)
    since, until = asked.period.since, asked.period.until
    for kind, campaign, channel, month, acquired_at, days, currency, amount in tx.rows(
        "SELECT kind, campaign, channel, acquired_month, acquired_at, days, currency, "
        f"amount_minor FROM lifecycle_outcomes_{slot} WHERE kind IN ({marks}) "
        "AND ((valid_from >= ? AND valid_from < ?) OR (valid_until >= ? AND valid_until < ?)) "
        "AND valid_from <= ? AND (valid_until IS NULL OR valid_until > ?)",
        [*kinds, midnight, following, midnight, following, asked.as_of, asked.as_of],
    ):
        acquired_on = _day(instant(acquired_at))
        if (since and acquired_on < since) or (until and acquired_on >= until):
            continue
        happened_on = acquired_on + timedelta(days=int(days))
        full = Key(kind, campaign, channel, month, acquired_on, int(days), currency, happened_on)
        total = counts[_ANY._replace(kind=kind, **{c: getattr(full, c) for c in columns})]
        total[0] += 1
        total[1] += int(amount)
    return counts


def _same(value: object) -> object:
    return value


def _int(value: object) -> object:
    return int(value)  # type: ignore[call-overload]


def _day(value: object) -> date:
    """A day as the databases give it back (a date, or ISO text on SQLite), or of an instant."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# How a column of the totals is read back (dates are text on SQLite).
_READ: dict[str, Callable[[object], object]] = {
    "acquired_on": _day,
    "happened_on": _day,
    "days": _int,
}


@dataclass
class SourceQuality:
    """How well one source's leads convert, and how sure that is."""

    group: str | None
    leads: int
    conversions: int
    rate: float | None
    low: float | None
    high: float | None
    """The 95% Wilson interval of ``rate``."""
    revenue_minor: dict[str, int]
    revenue_per_lead: dict[str, float]
    verdict: str
    """Against every other lead together: better, worse, no_difference or too_few_leads."""
    z: float | None
    p_value: float | None


@dataclass
class Quality:
    """Lead quality per source as of an instant."""

    by: str
    conversion: str
    as_of: datetime
    leads: int
    conversions: int
    items: list[SourceQuality] = field(default_factory=list)


def quality(tx: Transaction, slot: Slot, asked: Asked, by: By) -> Quality:
    """Per source: leads, conversions, rate with its interval, revenue per lead, and a test."""
    conversion = asked.conversion.value
    counts = outcome_counts(tx, slot, asked, (ACQUIRED, conversion, PAID), (SOURCE[by], "currency"))
    leads: dict[str | None, int] = defaultdict(int)
    converted: dict[str | None, int] = defaultdict(int)
    revenue: dict[str | None, dict[str, int]] = defaultdict(dict)
    for key, (n, amount) in counts.items():
        group = key.group(by)
        if key.kind == ACQUIRED:
            leads[group] += n
        if key.kind == conversion:  # (``lead``: every lead converted)
            converted[group] += n
        if key.kind == PAID:
            revenue[group][key.currency] = revenue[group].get(key.currency, 0) + amount
    all_leads, all_converted = sum(leads.values()), sum(converted.values())
    items = []
    for group in sorted(leads, key=lambda g: (g is None, g or "")):
        n, x = leads[group], converted[group]
        interval = wilson(x, n)
        test: Comparison = compare(x, n, all_converted - x, all_leads - n)
        items.append(
            SourceQuality(
                group=group,
                leads=n,
                conversions=x,
                rate=x / n if n else None,
                low=interval[0] if interval else None,
                high=interval[1] if interval else None,
                revenue_minor=dict(sorted(revenue[group].items())),
                revenue_per_lead={c: round(a / n, 2) for c, a in sorted(revenue[group].items())},
                verdict=test.verdict,
                z=test.z,
                p_value=test.p_value,
            )
        )
    return Quality(by, conversion, asked.as_of, all_leads, all_converted, items)


@dataclass
class Cohort:
    """The share of one source's leads converted by each day after acquisition."""

    group: str | None
    leads: int
    conversions: int
    median_days: int | None
    """The first day by which half had converted (None: not reached)."""
    curve: list[CurvePoint]


@dataclass
class Cohorts:
    """Kaplan-Meier curves per source, as of an instant."""

    by: str
    conversion: str
    as_of: datetime
    items: list[Cohort]


def cohorts(tx: Transaction, slot: Slot, asked: Asked, by: By) -> Cohorts:
    """Per source, the Kaplan-Meier curve of conversion by day after acquisition.

    Leads too young to have converted by ``as_of`` are censored at their age, not counted as
    failures: a lead acquired 3 days before says nothing about day 10.
    """
    conversion, source = asked.conversion.value, SOURCE[by]
    today = asked.as_of.astimezone(UTC).date()
    # Conversions by the day after acquisition they came on; leads and conversions by the day
    # of acquisition (what is left is censored at its age): two lists of days, not their product.
    events: dict[str | None, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for key, (n, _) in outcome_counts(tx, slot, asked, (conversion,), (source, "days")).items():
        events[key.group(by)][key.days] += n
    acquired: dict[str | None, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    converted: dict[str | None, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    kinds = (ACQUIRED, conversion)
    for key, (n, _) in outcome_counts(tx, slot, asked, kinds, (source, "acquired_on")).items():
        if key.kind == ACQUIRED:
            acquired[key.group(by)][key.acquired_on] += n
        if key.kind == conversion:  # (``lead``: every lead converted, on day 0)
            converted[key.group(by)][key.acquired_on] += n
    items = []
    for group in sorted(acquired, key=lambda g: (g is None, g or "")):
        censored: dict[int, int] = defaultdict(int)
        for day, leads in acquired[group].items():
            censored[(today - day).days] += leads - converted[group].get(day, 0)
        curve = kaplan_meier(events[group], censored)
        items.append(
            Cohort(
                group=group,
                leads=sum(acquired[group].values()),
                conversions=sum(events[group].values()),
                median_days=median_day(curve),
                curve=curve,
            )
        )
    return Cohorts(by, conversion, asked.as_of, items)


@dataclass
class Week:
    """New leads and conversions of one channel in one week (Monday to Sunday, UTC)."""

    week: date
    channel: str
    leads: int
    conversions: int


def trend(tx: Transaction, slot: Slot, asked: Asked) -> list[Week]:
    """New leads per week of acquisition and conversions per week of converting, per channel."""
    conversion = asked.conversion.value
    weeks: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0])
    columns = ("channel", "happened_on")
    for key, (n, _) in outcome_counts(tx, slot, asked, (ACQUIRED, conversion), columns).items():
        if key.kind == ACQUIRED:  # (acquired on the day it happened)
            weeks[_monday(key.happened_on), key.channel][0] += n
        if key.kind == conversion:
            weeks[_monday(key.happened_on), key.channel][1] += n
    return [
        Week(week, channel, leads, converted)
        for (week, channel), (leads, converted) in sorted(weeks.items())
    ]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())
