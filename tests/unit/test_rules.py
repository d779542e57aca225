"""The product rules, one test each; expected numbers are worked out by hand from the rules.

Facts are built on a day grid (``touch(kind, day)``, see conftest.py). With the default
rules, engagement halves every 14 days: ``points * 2 ** (-days / 14)``.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from itertools import product
from typing import TYPE_CHECKING

import pytest

from lifecycle.domain.vocabulary import KINDS, Stage, Temperature
from lifecycle.errors import RulebookError
from lifecycle.rules import LeadFold, StageMove, default_rulebook, fold, load_rulebook

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from lifecycle.rules import LeadView

MICROSECOND = timedelta(microseconds=1)
HAND_RAISES = ("product_question", "demo_request", "quote_request", "cart_add")
HOT_SIGNALS = (*HAND_RAISES, "upgrade_intent", "support_upgrade_request")
POINTS = {
    "page_view": 1,
    "email_open": 1,
    "email_click": 3,
    "social_engagement": 2,
    "newsletter_signup": 5,
    "form_fill": 10,
    "content_download": 8,
    "webinar_attended": 15,
    "pricing_page_view": 5,
    "product_question": 20,
    "demo_request": 30,
    "quote_request": 30,
    "cart_add": 25,
    "trial_start": 20,
    "product_usage": 4,
    "upgrade_intent": 25,
    "referral": 15,
    "review": 5,
    "support_upgrade_request": 20,
    "purchase": 0,
    "unsubscribe": 0,
}


def stages(view: LeadView) -> list[Stage]:
    return [move.stage for move in view.history]


def days_after(start: datetime, days: float) -> datetime:
    return start + timedelta(days=days)


def assert_instant(actual: datetime | None, expected: datetime) -> None:
    """Equal to within a millisecond (decay instants come from a logarithm)."""
    assert actual is not None
    assert abs(actual - expected) < timedelta(milliseconds=1)


# Engagement


def test_points_table_covers_every_touchpoint_kind():
    assert set(POINTS) == set(KINDS)


@pytest.mark.parametrize(("kind", "points"), POINTS.items())
def test_each_touchpoint_kind_earns_its_engagement_points(touch, rules, at, kind, points):
    view = fold([touch(kind, 0)], rules)

    assert view.engagement == points
    assert view.engagement_at(at(0)) == points


def test_engagement_halves_every_fourteen_days(touch, rules, at):
    view = fold([touch("form_fill", 0)], rules)

    assert view.engagement_at(at(7)) == pytest.approx(10 / math.sqrt(2))
    assert view.engagement_at(at(14)) == pytest.approx(5)
    assert view.engagement_at(at(28)) == pytest.approx(2.5)


def test_engagement_decays_before_new_points_are_added(touch, rules, at):
    view = fold([touch("form_fill", 0), touch("page_view", 14)], rules)

    assert view.engaged_at == at(14)
    assert view.engagement == pytest.approx(10 / 2 + 1)
    assert view.engagement_at(at(28)) == pytest.approx(6 / 2)


def test_engagement_sums_the_decayed_points_of_every_touchpoint(touch, rules, at):
    view = fold([touch("demo_request", 0), touch("form_fill", 7)], rules)

    # 30 * 2 ** (-21 / 14) + 10 * 2 ** (-14 / 14) = 10.6066 + 5
    assert view.engagement_at(at(21)) == pytest.approx(15.6066, abs=1e-4)


# Fit and score


@pytest.mark.parametrize(
    ("seniority", "points"),
    [
        ("c_level", 15),
        ("vp", 12),
        ("director", 10),
        ("manager", 6),
        ("individual", 2),
        ("other", 0),
    ],
)
def test_seniority_earns_fit_points(touch, rules, seniority, points):
    assert fold([touch("page_view", seniority=seniority)], rules).fit == points


@pytest.mark.parametrize(
    ("company_size", "points"),
    [(1, 2), (49, 2), (50, 5), (199, 5), (200, 8), (999, 8), (1000, 10), (25_000, 10)],
)
def test_company_size_earns_fit_points_by_band(touch, rules, company_size, points):
    assert fold([touch("page_view", company_size=company_size)], rules).fit == points


def test_fit_adds_seniority_and_company_size(touch, rules):
    assert fold([touch("page_view", seniority="vp", company_size=250)], rules).fit == 12 + 8


def test_latest_profile_values_win(touch, rules):
    first = touch("page_view", 0, seniority="c_level", company_size=2000)
    second = touch("page_view", 1, seniority="individual")
    third = touch("page_view", 2, company_size=30)

    assert fold([first], rules).fit == 15 + 10
    assert fold([second, first], rules).fit == 2 + 10
    assert fold([third, second, first], rules).fit == 2 + 2


def test_score_is_fit_plus_decayed_engagement(touch, rules, at):
    view = fold([touch("form_fill", 0, seniority="director", company_size=500)], rules)

    assert view.score_at(at(0)) == pytest.approx(18 + 10)
    assert view.score_at(at(14)) == pytest.approx(18 + 5)


# Visitor and lead


def test_anonymous_touchpoints_leave_a_visitor_that_is_not_a_lead(touch, rules):
    view = fold(
        [touch("page_view", 0, identified=False), touch("form_fill", 1, identified=False)], rules
    )

    assert view.stage is Stage.VISITOR
    assert stages(view) == [Stage.VISITOR]
    assert not view.is_lead


def test_first_identified_touchpoint_makes_a_lead(touch, rules, at):
    visit = touch("page_view", 0, identified=False)
    signup = touch("form_fill", 1)
    view = fold([visit, signup, touch("page_view", 2)], rules)

    assert view.is_lead
    assert view.history == (
        StageMove(stage=Stage.VISITOR, entered_at=at(0), exited_at=at(1), fact_id=visit.fact_id),
        StageMove(stage=Stage.LEAD, entered_at=at(1), exited_at=None, fact_id=signup.fact_id),
    )


def test_anonymous_visitor_does_not_move_stage_before_it_identifies(touch, rules):
    facts = [
        touch("webinar_attended", 0, identified=False, seniority="c_level", company_size=5000),
        touch("demo_request", 1, identified=False),
        touch("trial_start", 2, identified=False),
        touch("purchase", 3, identified=False, amount_minor=100, currency="EUR"),
    ]

    assert stages(fold(facts, rules)) == [Stage.VISITOR]


def test_anonymous_points_count_once_the_visitor_identifies(touch, rules, at):
    anonymous = [
        touch("demo_request", 0, identified=False),
        touch("form_fill", 0, identified=False),
    ]
    identify = touch("page_view", 0)  # same instant, a later fact id: applied last
    view = fold([identify, *anonymous], rules)

    # 30 + 10 anonymously, then 1 identified: 41 >= 40 at the identifying touchpoint
    assert view.engagement == pytest.approx(41)
    assert stages(view) == [Stage.VISITOR, Stage.LEAD, Stage.MQL]
    assert view.history[-1].fact_id == identify.fact_id
    assert view.became_at(Stage.MQL) == at(0)


# MQL


def test_score_of_forty_makes_an_mql(touch, rules):
    view = fold([touch("webinar_attended", seniority="c_level", company_size=1000)], rules)

    assert view.fit + view.engagement == 15 + 10 + 15
    assert stages(view) == [Stage.LEAD, Stage.MQL]


def test_score_just_below_forty_is_not_an_mql(touch, rules):
    view = fold([touch("webinar_attended", seniority="c_level", company_size=999)], rules)

    assert view.fit + view.engagement == 15 + 8 + 15
    assert stages(view) == [Stage.LEAD]


def test_decayed_engagement_does_not_make_an_mql(touch, rules, at):
    facts = [
        touch("webinar_attended", 0, seniority="director"),
        touch("content_download", 0),
        touch("form_fill", 14),
    ]
    view = fold(facts, rules)

    # 10 fit + (15 + 8) / 2 + 10 = 31.5; without decay it would be 43
    assert view.score_at(at(14)) == pytest.approx(31.5)
    assert stages(view) == [Stage.LEAD]


# SQL


@pytest.mark.parametrize("hand_raise", HAND_RAISES)
def test_hand_raise_makes_a_lead_sales_qualified(touch, rules, at, hand_raise):
    view = fold([touch("page_view", 0), touch(hand_raise, 1)], rules)

    assert stages(view) == [Stage.LEAD, Stage.SQL]
    assert view.became_at(Stage.SQL) == at(1)


def test_cart_add_makes_a_lead_sales_qualified(touch, rules):
    view = fold([touch("page_view", 0), touch("cart_add", 1)], rules)

    assert view.stage is Stage.SQL


@pytest.mark.parametrize("criteria", list(product([False, True], repeat=4)))
def test_bant_qualifies_with_at_least_three_criteria(touch, qualification, rules, criteria):
    need, budget, authority, timeline = criteria
    assessment = qualification(1, need=need, budget=budget, authority=authority, timeline=timeline)
    view = fold([touch("page_view", 0), assessment], rules)

    assert stages(view) == ([Stage.LEAD, Stage.SQL] if sum(criteria) >= 3 else [Stage.LEAD])


def test_bant_with_three_criteria_makes_sql(touch, qualification, rules):
    assessment = qualification(1, need=True, budget=True, authority=True)
    view = fold([touch("page_view", 0), assessment], rules)

    assert stages(view) == [Stage.LEAD, Stage.SQL]
    assert view.history[-1].fact_id == assessment.fact_id


def test_bant_with_two_criteria_does_not_qualify(touch, qualification, rules):
    view = fold([touch("page_view", 0), qualification(1, need=True, budget=True)], rules)

    assert stages(view) == [Stage.LEAD]


def test_sql_lead_does_not_drop_to_mql(touch, rules, at):
    view = fold([touch("demo_request", 0), touch("form_fill", 0)], rules)

    assert view.score_at(at(0)) == pytest.approx(30 + 10)
    assert stages(view) == [Stage.LEAD, Stage.SQL]


def test_one_fact_can_move_a_lead_through_several_stages_at_once(touch, rules, at):
    demo = touch("demo_request", 0, seniority="vp")  # 12 fit + 30 points = 42
    view = fold([demo], rules)

    assert view.history == (
        StageMove(stage=Stage.LEAD, entered_at=at(0), exited_at=at(0), fact_id=demo.fact_id),
        StageMove(stage=Stage.MQL, entered_at=at(0), exited_at=at(0), fact_id=demo.fact_id),
        StageMove(stage=Stage.SQL, entered_at=at(0), exited_at=None, fact_id=demo.fact_id),
    )


# PQL


def test_trial_start_alone_is_not_pql(touch, rules):
    assert stages(fold([touch("trial_start", 0)], rules)) == [Stage.LEAD]


def test_third_product_usage_after_trial_makes_pql(touch, rules, at):
    third = touch("product_usage", 3)
    facts = [touch("trial_start", 0), touch("product_usage", 1), touch("product_usage", 2), third]
    view = fold(facts, rules)

    # score at day 3: 20 * 2**(-3/14) + 4 * (2**(-2/14) + 2**(-1/14) + 1) = 28.67 < 40
    assert stages(view) == [Stage.LEAD, Stage.PQL]
    assert view.became_at(Stage.PQL) == at(3)
    assert view.history[-1].fact_id == third.fact_id


def test_second_product_usage_is_not_enough_for_pql(touch, rules):
    facts = [touch("trial_start", 0), touch("product_usage", 1), touch("product_usage", 2)]

    assert stages(fold(facts, rules)) == [Stage.LEAD]


def test_product_usage_before_the_trial_does_not_count(touch, rules, at):
    facts = [
        touch("product_usage", 0),
        touch("product_usage", 1),
        touch("trial_start", 2),
        touch("product_usage", 3),
        touch("product_usage", 4),
    ]

    assert stages(fold(facts, rules)) == [Stage.LEAD]
    view = fold([*facts, touch("product_usage", 5)], rules)
    assert stages(view) == [Stage.LEAD, Stage.PQL]
    assert view.became_at(Stage.PQL) == at(5)


def test_new_trial_start_restarts_the_usage_count(touch, rules, at):
    facts = [
        touch("trial_start", 0),
        touch("product_usage", 1),
        touch("product_usage", 2),
        touch("trial_start", 30),
        touch("product_usage", 31),
    ]

    assert stages(fold(facts, rules)) == [Stage.LEAD]
    view = fold([*facts, touch("product_usage", 32), touch("product_usage", 33)], rules)
    assert stages(view) == [Stage.LEAD, Stage.PQL]
    assert view.became_at(Stage.PQL) == at(33)


def test_upgrade_intent_after_trial_makes_pql(touch, rules, at):
    view = fold([touch("trial_start", 0), touch("upgrade_intent", 14)], rules)

    assert view.score_at(at(14)) == pytest.approx(20 / 2 + 25)
    assert stages(view) == [Stage.LEAD, Stage.PQL]
    assert view.became_at(Stage.PQL) == at(14)


def test_upgrade_intent_without_trial_is_not_pql(touch, rules):
    assert stages(fold([touch("upgrade_intent", 0)], rules)) == [Stage.LEAD]


def test_anonymous_trial_start_counts_for_upgrade_intent_once_identified(touch, rules):
    facts = [touch("trial_start", 0, identified=False), touch("upgrade_intent", 14)]

    assert stages(fold(facts, rules)) == [Stage.VISITOR, Stage.LEAD, Stage.PQL]


def test_anonymous_trial_and_usage_count_for_the_third_usage_once_identified(touch, rules):
    facts = [
        touch("trial_start", 0, identified=False),
        touch("product_usage", 1, identified=False),
        touch("product_usage", 2, identified=False),
        touch("product_usage", 3),
    ]

    assert stages(fold(facts, rules)) == [Stage.VISITOR, Stage.LEAD, Stage.PQL]


def test_pql_does_not_drop_to_sql_on_a_hand_raise(touch, rules):
    facts = [
        touch("trial_start", 0),
        touch("product_usage", 1),
        touch("product_usage", 2),
        touch("product_usage", 3),
        touch("cart_add", 4),
    ]

    assert stages(fold(facts, rules)) == [Stage.LEAD, Stage.PQL]


# Customer and service qualified


def test_purchase_makes_a_customer(touch, rules, at):
    view = fold([touch("page_view", 0), touch("purchase", 1)], rules)

    assert stages(view) == [Stage.LEAD, Stage.CUSTOMER]
    assert view.became_at(Stage.CUSTOMER) == at(1)


@pytest.mark.parametrize("ask", ["support_upgrade_request", "upgrade_intent"])
def test_customer_asking_for_more_becomes_service_qualified(touch, rules, ask):
    view = fold([touch("purchase", 0), touch(ask, 1)], rules)

    assert stages(view) == [Stage.LEAD, Stage.CUSTOMER, Stage.SERVICE_QUALIFIED]


def test_next_purchase_makes_a_service_qualified_lead_a_customer_again(touch, rules, at):
    facts = [
        touch("purchase", 0),
        touch("support_upgrade_request", 1),
        touch("purchase", 2),
    ]
    view = fold(facts, rules)

    assert stages(view) == [Stage.LEAD, Stage.CUSTOMER, Stage.SERVICE_QUALIFIED, Stage.CUSTOMER]
    assert view.history[-1].entered_at == at(2)


def test_hand_raise_does_not_move_a_customer_down(touch, rules):
    facts = [touch("purchase", 0), touch("demo_request", 1), touch("form_fill", 1)]

    assert stages(fold(facts, rules)) == [Stage.LEAD, Stage.CUSTOMER]


# Disqualification


def facts_reaching(stage: Stage, touch) -> list:
    if stage is Stage.LEAD:
        return [touch("page_view", 0)]
    if stage is Stage.MQL:
        return [touch("webinar_attended", 0, seniority="c_level", company_size=1000)]
    if stage is Stage.SQL:
        return [touch("demo_request", 0)]
    return [touch("trial_start", 0), *(touch("product_usage", day) for day in (1, 2, 3))]


@pytest.mark.parametrize("stage", [Stage.LEAD, Stage.MQL, Stage.SQL, Stage.PQL])
def test_disqualification_moves_any_stage_below_customer_to_disqualified(
    touch, disqualification, rules, at, stage
):
    facts = facts_reaching(stage, touch)
    assert fold(facts, rules).stage is stage

    view = fold([*facts, disqualification(5)], rules)

    assert view.stage is Stage.DISQUALIFIED
    assert stages(view)[-2:] == [stage, Stage.DISQUALIFIED]
    assert view.became_at(Stage.DISQUALIFIED) == at(5)


@pytest.mark.parametrize("asks_for_more", [False, True])
def test_disqualification_does_not_move_a_customer(touch, disqualification, rules, asks_for_more):
    facts = [touch("purchase", 0)]
    if asks_for_more:
        facts.append(touch("support_upgrade_request", 1))
    before = fold(facts, rules)

    after = fold([*facts, disqualification(2)], rules)

    assert after.stage is before.stage
    assert after.history == before.history


def test_disqualified_lead_reenters_by_hand_raise(touch, disqualification, rules, at):
    facts = [touch("page_view", 0), disqualification(1), touch("demo_request", 2)]
    view = fold(facts, rules)

    assert stages(view) == [Stage.LEAD, Stage.DISQUALIFIED, Stage.SQL]
    assert view.history[-1].entered_at == at(2)


def test_disqualified_lead_reenters_by_purchase(touch, disqualification, rules):
    facts = [touch("page_view", 0), disqualification(1), touch("purchase", 2)]

    assert stages(fold(facts, rules)) == [Stage.LEAD, Stage.DISQUALIFIED, Stage.CUSTOMER]


def test_disqualified_lead_stays_disqualified_without_hand_raise_or_purchase(
    touch, qualification, disqualification, rules
):
    facts = [
        touch("page_view", 0),
        disqualification(1),
        *(touch("webinar_attended", 2) for _ in range(3)),  # 45 points: MQL score
        qualification(3, need=True, budget=True, authority=True, timeline=True),
        touch("trial_start", 4),
        *(touch("product_usage", day) for day in (5, 6, 7)),
        touch("upgrade_intent", 8),
        touch("support_upgrade_request", 9),
    ]

    assert stages(fold(facts, rules)) == [Stage.LEAD, Stage.DISQUALIFIED]


# Qualification and disqualification of visitors


def test_identified_qualification_turns_a_visitor_into_a_lead(touch, qualification, rules):
    assessment = qualification(1, need=True)
    view = fold([touch("page_view", 0, identified=False), assessment], rules)

    assert stages(view) == [Stage.VISITOR, Stage.LEAD]
    assert view.history[-1].fact_id == assessment.fact_id


def test_identified_bant_qualification_takes_a_visitor_to_sql(touch, qualification, rules):
    assessment = qualification(1, need=True, budget=True, authority=True)
    view = fold([touch("page_view", 0, identified=False), assessment], rules)

    assert stages(view) == [Stage.VISITOR, Stage.LEAD, Stage.SQL]


def test_identified_disqualification_turns_a_visitor_into_a_disqualified_lead(
    touch, disqualification, rules
):
    view = fold([touch("page_view", 0, identified=False), disqualification(1)], rules)

    assert stages(view) == [Stage.VISITOR, Stage.LEAD, Stage.DISQUALIFIED]


def test_anonymous_qualification_leaves_a_visitor(touch, qualification, rules):
    assessment = qualification(
        1, need=True, budget=True, authority=True, timeline=True, identified=False
    )
    view = fold([touch("page_view", 0, identified=False), assessment], rules)

    assert stages(view) == [Stage.VISITOR]


def test_anonymous_disqualification_leaves_a_visitor(touch, disqualification, rules):
    view = fold(
        [touch("page_view", 0, identified=False), disqualification(1, identified=False)], rules
    )

    assert stages(view) == [Stage.VISITOR]


# History


def test_history_records_entered_and_exited_instants_and_the_causing_fact(
    touch, disqualification, rules, at
):
    visit = touch("page_view", 0, identified=False)
    click = touch("email_click", 1)
    demo = touch("demo_request", 3)  # 1 * 2**(-3/14) + 3 * 2**(-2/14) + 30 = 33.6: no MQL
    dropped = disqualification(5)
    bought = touch("purchase", 8)
    view = fold([bought, dropped, demo, click, visit], rules)

    assert view.history == (
        StageMove(stage=Stage.VISITOR, entered_at=at(0), exited_at=at(1), fact_id=visit.fact_id),
        StageMove(stage=Stage.LEAD, entered_at=at(1), exited_at=at(3), fact_id=click.fact_id),
        StageMove(stage=Stage.SQL, entered_at=at(3), exited_at=at(5), fact_id=demo.fact_id),
        StageMove(
            stage=Stage.DISQUALIFIED, entered_at=at(5), exited_at=at(8), fact_id=dropped.fact_id
        ),
        StageMove(stage=Stage.CUSTOMER, entered_at=at(8), exited_at=None, fact_id=bought.fact_id),
    )
    assert view.became_at(Stage.MQL) is None


# Temperature


@pytest.mark.parametrize("signal", HOT_SIGNALS)
def test_hot_after_hand_raise_until_seven_days_later(touch, rules, at, signal):
    view = fold([touch(signal, 0)], rules)  # at most 30 points: never hot by engagement

    assert view.hot_until == at(7)
    assert view.temperature(at(0)) is Temperature.HOT
    assert view.temperature(at(7) - MICROSECOND) is Temperature.HOT
    assert view.temperature(at(7)) is not Temperature.HOT


def test_warm_after_the_hot_window_while_engagement_is_at_least_fifteen(touch, rules, at):
    view = fold([touch("cart_add", 0)], rules)
    warm_until = days_after(at(0), 14 * math.log2(25 / 15))  # 10.3175 days

    assert_instant(view.warm_until, warm_until)
    assert view.temperature(at(7)) is Temperature.WARM  # 25 / sqrt(2) = 17.7
    assert view.temperature(at(10.3)) is Temperature.WARM
    assert view.temperature(at(10.33)) is Temperature.COLD


def test_engagement_of_fifty_or_more_is_hot(touch, rules, at):
    view = fold([touch("form_fill", 0) for _ in range(6)], rules)  # 60 points
    hot_until = days_after(at(0), 14 * math.log2(60 / 50))  # 3.6825 days
    warm_until = days_after(at(0), 14 * math.log2(60 / 15))  # 28 days

    assert_instant(view.hot_until, hot_until)
    assert_instant(view.warm_until, warm_until)
    assert view.temperature(at(0)) is Temperature.HOT
    assert view.temperature(at(3.68)) is Temperature.HOT
    assert view.temperature(at(3.69)) is Temperature.WARM
    assert view.temperature(at(27.99)) is Temperature.WARM
    assert view.temperature(at(28.01)) is Temperature.COLD


def test_engagement_between_fifteen_and_fifty_is_warm(touch, rules, at):
    view = fold([touch("form_fill", 0), touch("form_fill", 0)], rules)  # 20 points

    assert view.hot_until is None
    assert_instant(view.warm_until, days_after(at(0), 14 * math.log2(20 / 15)))  # 5.8105 d
    assert view.temperature(at(0)) is Temperature.WARM
    assert view.temperature(at(5.81)) is Temperature.WARM
    assert view.temperature(at(5.82)) is Temperature.COLD


def test_engagement_below_fifteen_is_cold(touch, rules, at):
    view = fold([touch("form_fill", 0)], rules)

    assert view.hot_until is None
    assert view.warm_until is None
    assert view.temperature(at(0)) is Temperature.COLD


def test_hot_until_is_the_hand_raise_window_when_it_outlasts_engagement(touch, rules, at):
    view = fold([touch("demo_request", 0), *(touch("form_fill", 0) for _ in range(3))], rules)

    # 60 points are hot for 3.68 days only; the demo request keeps it hot for 7
    assert view.hot_until == at(7)
    assert_instant(view.warm_until, at(28))


def test_hot_until_is_the_engagement_when_it_outlasts_the_hand_raise(touch, rules, at):
    view = fold([touch("demo_request", 0), *(touch("form_fill", 0) for _ in range(17))], rules)

    # 200 points stay >= 50 for two half-lives (28 days), >= 15 for 14 * log2(200 / 15) days
    assert_instant(view.hot_until, at(28))
    assert_instant(view.warm_until, days_after(at(0), 14 * math.log2(200 / 15)))


def test_hot_window_counts_from_the_last_hand_raise(touch, rules, at):
    view = fold([touch("cart_add", 0), touch("cart_add", 5)], rules)

    # engagement at day 5: 25 * 2**(-5/14) + 25 = 44.5 < 50
    assert view.hot_until == at(12)


def test_hand_raise_older_than_seven_days_no_longer_makes_a_lead_hot(touch, rules, at):
    view = fold([touch("cart_add", 0), touch("page_view", 10)], rules)

    # 25 * 2**(-10/14) + 1 = 16.2: warm, not hot
    assert view.engagement_at(at(10)) == pytest.approx(16.24, abs=0.01)
    assert view.temperature(at(10)) is Temperature.WARM


# Acquisition


def test_acquisition_is_the_campaign_of_the_earliest_touchpoint_that_has_one(touch, rules):
    facts = [
        touch("page_view", 0),
        touch("page_view", 1, campaign_id="spring-sale", channel="paid_search"),
        touch("form_fill", 2, campaign_id="webinar-q1", channel="email"),
    ]
    view = fold(reversed(facts), rules)

    assert view.acquisition_campaign == "spring-sale"
    assert view.acquisition_channel == "paid_search"


def test_acquisition_includes_anonymous_history(touch, rules):
    facts = [
        touch("page_view", 0, identified=False, campaign_id="retargeting", channel="display"),
        touch("form_fill", 3, campaign_id="newsletter", channel="email"),
    ]
    view = fold(facts, rules)

    assert view.acquisition_campaign == "retargeting"
    assert view.acquisition_channel == "display"


def test_acquisition_without_a_campaign_is_referral_for_a_referred_lead(touch, rules):
    view = fold([touch("page_view", 0), touch("referral", 1)], rules)

    assert view.acquisition_campaign is None
    assert view.acquisition_channel == "referral"


def test_acquisition_without_a_campaign_or_referral_is_direct(touch, rules):
    view = fold([touch("page_view", 0), touch("form_fill", 1)], rules)

    assert view.acquisition_campaign is None
    assert view.acquisition_channel == "direct"


# Revenue


def test_revenue_sums_purchase_amounts_per_currency(touch, rules):
    facts = [
        touch("purchase", 0, amount_minor=1999, currency="EUR"),
        touch("purchase", 1, amount_minor=500, currency="USD"),
        touch("purchase", 2, amount_minor=2500, currency="EUR"),
    ]

    assert fold(facts, rules).revenue == {"EUR": 4499, "USD": 500}


def test_lead_without_purchases_has_no_revenue(touch, rules):
    assert fold([touch("cart_add", 0)], rules).revenue == {}


# Arrival order and time travel


def test_arrival_order_does_not_matter(touch, qualification, disqualification, rules):
    facts = [
        touch("page_view", 0, identified=False, campaign_id="c1", channel="social"),
        touch("form_fill", 1, seniority="manager", company_size=120),
        qualification(2, need=True, budget=True),
        touch("demo_request", 3),
        disqualification(4),
        touch("purchase", 6, amount_minor=900, currency="EUR"),
        touch("upgrade_intent", 7),
    ]
    expected = fold(facts, rules)

    assert fold(reversed(facts), rules) == expected
    assert fold(facts[3:] + facts[:3], rules) == expected


def test_facts_at_the_same_instant_apply_in_fact_id_order(touch, disqualification, rules):
    start = touch("page_view", 0, fact_id="a")

    drop_then_demo = [
        touch("demo_request", 1, fact_id="c"),
        disqualification(1, fact_id="b"),
        start,
    ]
    demo_then_drop = [
        disqualification(1, fact_id="c"),
        touch("demo_request", 1, fact_id="b"),
        start,
    ]

    assert fold(drop_then_demo, rules).stage is Stage.SQL
    assert fold(demo_then_drop, rules).stage is Stage.DISQUALIFIED


def test_fold_as_of_ignores_later_facts(touch, rules, at):
    facts = [touch("page_view", 0), touch("demo_request", 5)]

    before = fold(facts, rules, as_of=at(5) - MICROSECOND)
    assert before.stage is Stage.LEAD
    assert before.facts == 1
    assert fold(facts, rules, as_of=at(5)).stage is Stage.SQL


def test_incremental_fold_rejects_a_fact_older_than_the_last(touch, rules):
    later, earlier = touch("page_view", 1), touch("page_view", 0)
    folder = LeadFold(rules)
    folder.add(later)

    with pytest.raises(ValueError, match="event-time order"):
        folder.add(earlier)


# Unsubscribe


def test_unsubscribe_marks_the_lead_unsubscribed(touch, rules):
    view = fold([touch("newsletter_signup", 0), touch("unsubscribe", 1)], rules)

    assert view.unsubscribed


def test_newsletter_signup_after_unsubscribe_clears_it(touch, rules):
    view = fold([touch("unsubscribe", 0), touch("newsletter_signup", 1)], rules)

    assert not view.unsubscribed


def test_newsletter_signup_arriving_late_does_not_clear_a_later_unsubscribe(touch, rules):
    signup, leave = touch("newsletter_signup", 0), touch("unsubscribe", 1)

    assert fold([leave, signup], rules).unsubscribed


# Rulebooks


def write_rulebook(tmp_path: Path, body: str, *, version: str | None = "test.1") -> Path:
    path = tmp_path / "rules.toml"
    header = f'rules_version = "{version}"\n' if version else ""
    path.write_text(header + body, encoding="utf-8")
    return path


def test_load_rulebook_without_a_file_gives_the_defaults():
    assert load_rulebook() is default_rulebook()


def test_rulebook_override_changes_the_mql_threshold(tmp_path, touch, rules):
    custom = load_rulebook(write_rulebook(tmp_path, "[stages]\nmql_score = 20\n"))
    facts = [touch("form_fill", 0), touch("form_fill", 0)]  # 20 points

    assert stages(fold(facts, rules)) == [Stage.LEAD]
    view = fold(facts, custom)
    assert stages(view) == [Stage.LEAD, Stage.MQL]
    assert view.rules_version == "test.1"


def test_rulebook_override_keeps_every_other_default(tmp_path, rules):
    custom = load_rulebook(write_rulebook(tmp_path, "[stages]\nmql_score = 20\n"))

    assert custom.mql_score == 20
    assert dataclasses.replace(custom, version=rules.version, mql_score=rules.mql_score) == rules


def test_rulebook_override_changes_the_points_of_one_kind(tmp_path, touch):
    custom = load_rulebook(write_rulebook(tmp_path, "[engagement.points]\npage_view = 7\n"))

    assert fold([touch("page_view", 0)], custom).engagement == 7
    assert fold([touch("email_open", 0)], custom).engagement == 1


def test_rulebook_override_changes_the_half_life(tmp_path, touch, at):
    custom = load_rulebook(write_rulebook(tmp_path, "[engagement]\nhalf_life_days = 7\n"))

    assert fold([touch("form_fill", 0)], custom).engagement_at(at(7)) == pytest.approx(5)


def test_rulebook_override_must_set_its_own_rules_version(tmp_path):
    path = write_rulebook(tmp_path, "[stages]\nmql_score = 20\n", version=None)

    with pytest.raises(RulebookError, match="rules_version"):
        load_rulebook(path)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("[stage]\nmql_score = 20\n", "stage"),
        ("[stages]\nmql_scor = 20\n", "stages.mql_scor"),
        ("[temperature]\nhot_for_day = 3\n", "temperature.hot_for_day"),
    ],
)
def test_a_misspelled_key_is_refused_not_ignored(tmp_path, body, named):
    with pytest.raises(RulebookError, match=f"unknown key\\(s\\) {named}"):
        load_rulebook(write_rulebook(tmp_path, body))


def test_a_rules_version_that_is_not_text_is_refused(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text("rules_version = 3\n")

    with pytest.raises(RulebookError, match="rules_version must be text"):
        load_rulebook(path)


@pytest.mark.parametrize(
    "body",
    [
        "[engagement.points]\nfax_sent = 3\n",
        '[stages]\nhand_raises = ["demo_request", "fax_sent"]\n',
        '[temperature]\nhot_signals = ["fax_sent"]\n',
    ],
)
def test_rulebook_with_an_unknown_touchpoint_kind_is_rejected(tmp_path, body):
    with pytest.raises(RulebookError, match="fax_sent"):
        load_rulebook(write_rulebook(tmp_path, body))


def test_rulebook_with_an_unknown_seniority_is_rejected(tmp_path):
    with pytest.raises(RulebookError, match="intern"):
        load_rulebook(write_rulebook(tmp_path, "[fit.seniority]\nintern = 1\n"))


@pytest.mark.parametrize("days", [0, -14])
def test_rulebook_with_a_non_positive_half_life_is_rejected(tmp_path, days):
    body = f"[engagement]\nhalf_life_days = {days}\n"

    with pytest.raises(RulebookError, match="half_life_days"):
        load_rulebook(write_rulebook(tmp_path, body))


def test_rulebook_with_a_value_of_the_wrong_type_is_rejected(tmp_path):
    with pytest.raises(RulebookError, match="wrong type"):
        load_rulebook(write_rulebook(tmp_path, '[stages]\nmql_score = "high"\n'))


def test_rulebook_that_is_not_toml_is_rejected(tmp_path):
    with pytest.raises(RulebookError, match="not valid TOML"):
        load_rulebook(write_rulebook(tmp_path, "[stages\nmql_score = 20\n"))


def test_missing_rulebook_file_is_rejected(tmp_path):
    with pytest.raises(RulebookError, match="cannot read"):
        load_rulebook(tmp_path / "absent.toml")


def test_the_default_attribution_is_first_touch_with_90_days_of_lookback_and_a_week_of_decay():
    rules = default_rulebook()

    assert rules.attribution_model == "first_touch"
    assert rules.lookback == timedelta(days=90)
    assert rules.time_decay_half_life == timedelta(days=7)


def test_a_rulebook_overrides_the_attribution_model_and_windows(tmp_path):
    custom = load_rulebook(
        write_rulebook(
            tmp_path,
            '[attribution]\nmodel = "markov"\nlookback_days = 30\ntime_decay_half_life_days = 3\n',
        )
    )

    assert (custom.attribution_model, custom.lookback, custom.time_decay_half_life) == (
        "markov",
        timedelta(days=30),
        timedelta(days=3),
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('[attribution]\nmodel = "last_click"\n', "attribution.model must be one of first_touch"),
        ("[attribution]\nlookback_days = 0\n", "must be positive"),
        ("[attribution]\ntime_decay_half_life_days = -7\n", "must be positive"),
    ],
)
def test_a_rulebook_with_an_unknown_model_or_a_window_of_no_length_is_refused(
    tmp_path, body, named
):
    with pytest.raises(RulebookError, match=named):
        load_rulebook(write_rulebook(tmp_path, body))
