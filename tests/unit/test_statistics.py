"""The statistics of lead quality against the libraries statisticians use (test oracles).

statsmodels for the Wilson interval and the two-proportion z-test, lifelines for Kaplan-Meier
(its curve, its exponential Greenwood interval and its median), on the same numbers.
"""

from __future__ import annotations

import random

import pytest
from lifelines import KaplanMeierFitter
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from lifecycle.domain.statistics import MIN_LEADS, compare, kaplan_meier, median_day, wilson


@pytest.mark.parametrize(
    ("converted", "leads"), [(0, 1), (0, 12), (3, 10), (10, 10), (57, 400), (1, 2000), (999, 1000)]
)
def test_the_wilson_interval_is_statsmodels_wilson_interval(converted, leads):
    low, high = proportion_confint(converted, leads, alpha=0.05, method="wilson")

    assert wilson(converted, leads) == pytest.approx((low, high), abs=1e-12)


def test_no_leads_have_no_interval():
    assert wilson(0, 0) is None


@pytest.mark.parametrize(
    ("group", "others"),
    [((40, 100), (300, 1000)), ((30, 300), (400, 2000)), ((5, 30), (6, 30)), ((90, 120), (20, 60))],
)
def test_the_comparison_is_statsmodels_pooled_two_proportion_z_test(group, others):
    z, p_value = proportions_ztest([group[0], others[0]], [group[1], others[1]])

    found = compare(group[0], group[1], others[0], others[1])

    assert (found.z, found.p_value) == pytest.approx((z, p_value), rel=1e-12)
    assert found.verdict == ("no_difference" if p_value >= 0.05 else "better" if z > 0 else "worse")


def test_a_group_or_the_rest_below_the_minimum_is_too_few_leads_to_compare():
    assert compare(10, MIN_LEADS - 1, 100, 1000).verdict == "too_few_leads"
    assert compare(10, 1000, 1, MIN_LEADS - 1).verdict == "too_few_leads"
    assert compare(0, MIN_LEADS, 0, MIN_LEADS).verdict == "no_difference"  # nobody converted


@pytest.mark.parametrize("seed", range(6))
def test_the_cohort_curve_is_lifelines_kaplan_meier_with_its_interval_and_median(seed):
    rng = random.Random(seed)  # noqa: S311 (test data, not secrets)
    durations, converted, censored = [], {}, {}
    events = []
    for _ in range(rng.randint(5, 500)):
        day, done = rng.randint(0, 60), rng.random() < rng.uniform(0.2, 0.8)
        durations.append(day)
        events.append(done)
        table = converted if done else censored
        table[day] = table.get(day, 0) + 1
    fitter = KaplanMeierFitter().fit(durations, events)
    interval = fitter.confidence_interval_survival_function_

    curve = kaplan_meier(converted, censored)

    assert [p.day for p in curve] == sorted(set(durations))
    for point in curve:
        survival = float(fitter.survival_function_.loc[point.day].iloc[0])
        lower, upper = interval.loc[point.day]
        assert point.share == pytest.approx(1 - survival, abs=1e-12)
        assert (point.low, point.high) == pytest.approx((1 - upper, 1 - lower), abs=1e-12)
    median = fitter.median_survival_time_
    assert median_day(curve) == (None if median == float("inf") else int(median))


def test_leads_too_young_to_tell_are_censored_not_counted_as_failures():
    # 10 leads: 5 converted on day 2, 5 acquired a day ago. Counting the young as failures
    # would say 50%; they say nothing yet about day 2: 100% of those old enough converted.
    curve = kaplan_meier({2: 5}, {1: 5})

    assert [(p.day, p.at_risk, p.share) for p in curve] == [(1, 10, 0.0), (2, 5, 1.0)]
