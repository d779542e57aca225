"""Honest statistics for lead quality: intervals, a test between groups, and survival curves.

Pure arithmetic, checked in the tests against statsmodels (Wilson interval, two-proportion
z-test) and lifelines (Kaplan-Meier with its exponential Greenwood interval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)
"""1.959963984540054: the normal quantile of a two-sided 95% interval."""
SIGNIFICANCE = 0.05
MIN_LEADS = 30
"""A group and the rest need this many leads each before they are compared."""

Verdict = Literal["better", "worse", "no_difference", "too_few_leads"]


def wilson(successes: int, trials: int) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a proportion (None without trials)."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = Z * Z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Comparison:
    """A group's rate against everyone else's: the pooled two-proportion z-test, two-sided."""

    verdict: Verdict
    z: float | None
    p_value: float | None


def compare(successes: int, trials: int, others: int, others_trials: int) -> Comparison:
    """Whether the group converts better or worse than the others, at the 5% level."""
    if trials < MIN_LEADS or others_trials < MIN_LEADS:
        return Comparison("too_few_leads", None, None)
    pooled = (successes + others) / (trials + others_trials)
    spread = pooled * (1 - pooled) * (1 / trials + 1 / others_trials)
    if spread <= 0:  # everyone converted, or nobody did: no difference to see
        return Comparison("no_difference", 0.0, 1.0)
    z = (successes / trials - others / others_trials) / math.sqrt(spread)
    p_value = math.erfc(abs(z) / math.sqrt(2))
    if p_value >= SIGNIFICANCE:
        return Comparison("no_difference", z, p_value)
    return Comparison("better" if z > 0 else "worse", z, p_value)


@dataclass(frozen=True)
class CurvePoint:
    """The Kaplan-Meier estimate at the end of one day on which someone converted."""

    day: int
    at_risk: int
    converted: int
    censored: int
    """Leads last seen unconverted on this day (too young to say more)."""
    share: float
    """The share converted by the end of this day: 1 - S(day)."""
    low: float
    high: float
    """The 95% interval of ``share`` (exponential Greenwood, as lifelines computes it)."""


def kaplan_meier(converted: Mapping[int, int], censored: Mapping[int, int]) -> list[CurvePoint]:
    """The share converted by day d, with leads too young to tell censored, not failed.

    ``converted``: leads that converted, by the day they did (0: the day of acquisition);
    ``censored``: leads not converted yet, by their age in days. A lead censored on day d is at
    risk on day d (as in lifelines). One point per day with a conversion or a censoring.
    """
    days = sorted({d for d, n in converted.items() if n} | {d for d, n in censored.items() if n})
    at_risk = sum(converted.values()) + sum(censored.values())
    survival, greenwood = 1.0, 0.0
    points: list[CurvePoint] = []
    for day in days:
        events, gone = converted.get(day, 0), censored.get(day, 0)
        if events:
            survival *= 1 - events / at_risk
            greenwood += events / (at_risk * (at_risk - events)) if events < at_risk else math.inf
        low, high = _interval(survival, greenwood)
        points.append(CurvePoint(day, at_risk, events, gone, 1 - survival, low, high))
        at_risk -= events + gone
    return points


def _interval(survival: float, greenwood: float) -> tuple[float, float]:
    """The 95% interval of 1 - S by the exponential Greenwood formula (log(-log S))."""
    if survival >= 1.0:
        return 0.0, 0.0
    if survival <= 0.0 or math.isinf(greenwood):
        return 1.0, 1.0
    log_s = math.log(survival)
    spread = Z * math.sqrt(greenwood) / log_s  # (negative, as log S is)
    lower_s = math.exp(-math.exp(math.log(-log_s) - spread))
    upper_s = math.exp(-math.exp(math.log(-log_s) + spread))
    return 1 - upper_s, 1 - lower_s


def median_day(points: list[CurvePoint]) -> int | None:
    """The first day by which half had converted (None: the curve never reaches one half)."""
    return next((p.day for p in points if p.share >= 0.5), None)
