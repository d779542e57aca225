"""Each attribution model on paths whose credit was worked out by hand, and conservation.

Journeys are facts on the day grid of conftest.py. Campaign touches are named by campaign:
A..E, each on its own channel. Time decay halves every 7 days: ``2 ** (-age / 7)``.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.domain.facts import Touch
from lifecycle.domain.vocabulary import HEURISTIC_MODELS, Conversion, Model, Stage
from lifecycle.rules import default_rulebook, fold
from lifecycle.rules.attribution import shares
from lifecycle.rules.markov import START, Transitions, collapse, removals

CHANNELS = {"A": "paid_search", "B": "email", "C": "events", "D": "paid_social", "E": "display"}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def credit_of(view, conversion: Conversion, model: Model) -> dict[str | None, float]:
    """Each campaign's share of one conversion under one model."""
    index = HEURISTIC_MODELS.index(model)
    found: dict[str | None, float] = {}
    for credit in shares(view, default_rulebook()):
        if credit.conversion is conversion and credit.shares[index]:
            found[credit.campaign] = found.get(credit.campaign, 0.0) + credit.shares[index]
    return found


@pytest.fixture
def campaign_touch(touch):
    """``campaign_touch(kind, day, campaign, identified=True)``."""

    def build(kind: str, day: float, campaign: str, *, identified: bool = True) -> Touch:
        return touch(
            kind, day, campaign_id=campaign, channel=CHANNELS[campaign], identified=identified
        )

    return build


@pytest.fixture
def one_touch(campaign_touch, touch, rules):
    """A's ad seen anonymously on day 0, a form on day 1 (no campaign), a purchase on day 10."""
    return fold(
        [
            campaign_touch("page_view", 0, "A", identified=False),
            touch("form_fill", 1),
            touch("purchase", 10, amount_minor=10_000, currency="EUR"),
        ],
        rules,
    )


@pytest.mark.parametrize("model", HEURISTIC_MODELS)
def test_one_campaign_touch_gets_the_whole_conversion_under_every_model(one_touch, model):
    assert credit_of(one_touch, Conversion.CUSTOMER, model) == {"A": 1.0}
    assert credit_of(one_touch, Conversion.LEAD, model) == {"A": 1.0}


@pytest.fixture
def two_touches(campaign_touch, touch, rules):
    """A's ad on day 0 (anonymous), a form from B's e-mail on day 1 (the lead), a purchase on 5."""
    return fold(
        [
            campaign_touch("page_view", 0, "A", identified=False),
            campaign_touch("form_fill", 1, "B"),
            touch("purchase", 5, amount_minor=10_000, currency="EUR"),
        ],
        rules,
    )


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Model.FIRST_TOUCH, {"A": 1.0}),
        (Model.LAST_TOUCH, {"B": 1.0}),
        (Model.LINEAR, {"A": 0.5, "B": 0.5}),
        (Model.POSITION_BASED, {"A": 0.5, "B": 0.5}),  # two touches: halves
        # First touch A and the lead's touch B hold 30% each; nothing else: scaled to halves.
        (Model.W_SHAPED, {"A": 0.5, "B": 0.5}),
        # Ages at the purchase 5 and 4 days.
        (
            Model.TIME_DECAY,
            {
                "A": 2 ** (-5 / 7) / (2 ** (-5 / 7) + 2 ** (-4 / 7)),
                "B": 2 ** (-4 / 7) / (2 ** (-5 / 7) + 2 ** (-4 / 7)),
            },
        ),
    ],
)
def test_two_campaign_touches_share_a_purchase_as_each_model_says(two_touches, model, expected):
    assert credit_of(two_touches, Conversion.CUSTOMER, model) == pytest.approx(expected)


@pytest.fixture
def five_touches(campaign_touch, touch, rules):
    """A (day 0, anonymous), B's form (day 1: the lead), C's e-mail click (3), D's demo request
    (5: sales-ready, and MQL on the same fact), E's display ad (7), a purchase (9)."""
    return fold(
        [
            campaign_touch("page_view", 0, "A", identified=False),
            campaign_touch("form_fill", 1, "B"),
            campaign_touch("email_click", 3, "C"),
            campaign_touch("demo_request", 5, "D"),
            campaign_touch("page_view", 7, "E"),
            touch("purchase", 9, amount_minor=10_000, currency="EUR"),
        ],
        rules,
    )


def test_the_five_touch_journey_makes_every_conversion(five_touches, at):
    assert five_touches.became_at(Stage.LEAD) == at(1)
    assert five_touches.became_at(Stage.MQL) == at(5)
    assert five_touches.became_at(Stage.SQL) == at(5)
    assert five_touches.became_at(Stage.CUSTOMER) == at(9)


DECAY = {name: 2 ** (-age / 7) for name, age in zip("ABCDE", (9, 8, 6, 4, 2), strict=True)}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Model.FIRST_TOUCH, {"A": 1.0}),
        (Model.LAST_TOUCH, {"E": 1.0}),
        (Model.LINEAR, dict.fromkeys("ABCDE", 0.2)),
        (Model.POSITION_BASED, {"A": 0.4, "B": 0.2 / 3, "C": 0.2 / 3, "D": 0.2 / 3, "E": 0.4}),
        # First A, the lead's B (day 1), sales-ready D (day 5): 30% each; C and E share 10%.
        (Model.W_SHAPED, {"A": 0.3, "B": 0.3, "C": 0.05, "D": 0.3, "E": 0.05}),
        (Model.TIME_DECAY, {k: v / sum(DECAY.values()) for k, v in DECAY.items()}),
    ],
)
def test_five_campaign_touches_share_a_purchase_as_each_model_says(five_touches, model, expected):
    assert credit_of(five_touches, Conversion.CUSTOMER, model) == pytest.approx(expected)


def test_a_conversion_credits_only_the_touches_up_to_its_instant(five_touches):
    # Sales-ready on day 5: E (day 7) came after. W-shaped: A, B and D 30% each, C 10%.
    assert credit_of(five_touches, Conversion.SQL, Model.W_SHAPED) == pytest.approx(
        {"A": 0.3, "B": 0.3, "C": 0.1, "D": 0.3}
    )
    assert credit_of(five_touches, Conversion.SQL, Model.LAST_TOUCH) == {"D": 1.0}
    # The lead was made on day 1 by B's form: A and B only.
    assert credit_of(five_touches, Conversion.LEAD, Model.LINEAR) == {"A": 0.5, "B": 0.5}


def test_w_shaped_gives_a_touch_that_is_two_milestones_both_shares(campaign_touch, touch, rules):
    # A's form makes the lead (first touch and lead touch: 60%), C's demo request makes it
    # sales-ready (30%), B in between gets the other 10%.
    view = fold(
        [
            campaign_touch("form_fill", 0, "A"),
            campaign_touch("email_click", 1, "B"),
            campaign_touch("demo_request", 2, "C"),
            touch("purchase", 3, amount_minor=1, currency="EUR"),
        ],
        rules,
    )

    assert credit_of(view, Conversion.CUSTOMER, Model.W_SHAPED) == pytest.approx(
        {"A": 0.6, "B": 0.1, "C": 0.3}
    )


def test_touches_older_than_the_lookback_get_no_credit(five_touches, rules):
    # A lookback of 3 days before the purchase on day 9: only E (day 7) counts.
    short = dataclasses.replace(rules, lookback=timedelta(days=3))
    given = [c for c in shares(five_touches, short) if c.conversion is Conversion.CUSTOMER]

    assert [(c.campaign, c.shares) for c in given] == [("E", (1.0,) * len(HEURISTIC_MODELS))]


def test_a_conversion_without_campaign_touches_goes_to_no_campaign_direct_or_referral(touch, rules):
    direct = fold(
        [touch("form_fill", 0), touch("purchase", 2, amount_minor=5, currency="EUR")], rules
    )
    referred = fold(
        [touch("referral", 0), touch("purchase", 2, amount_minor=5, currency="EUR")], rules
    )

    for view, channel in ((direct, "direct"), (referred, "referral")):
        (purchase,) = [c for c in shares(view, rules) if c.conversion is Conversion.CUSTOMER]
        assert (purchase.campaign, purchase.channel, purchase.month) == (None, channel, "2026-01")
        assert purchase.shares == (1.0,) * len(HEURISTIC_MODELS)


def test_a_visitor_converts_nothing(campaign_touch, rules):
    visitor = fold([campaign_touch("page_view", 0, "A", identified=False)], rules)

    assert shares(visitor, rules) == []


def test_credit_goes_to_the_month_of_each_touch(campaign_touch, touch, rules):
    # Day 0 is 2026-01-05: A on 2026-01-05, B on 2026-02-04.
    view = fold(
        [
            campaign_touch("form_fill", 0, "A"),
            campaign_touch("email_click", 30, "B"),
            touch("purchase", 31, amount_minor=1, currency="EUR"),
        ],
        rules,
    )

    months = {
        c.campaign: c.month for c in shares(view, rules) if c.conversion is Conversion.CUSTOMER
    }
    assert months == {"A": "2026-01", "B": "2026-02"}


# --- the data-driven model -------------------------------------------------------------------


def chain(paths: list[tuple[list[str], bool, float]], *, collapsed: bool = True) -> Transitions:
    """Transitions of paths given as (states, converted, revenue in EUR)."""
    moves: dict[tuple[str, str], float] = {}
    ends: dict[tuple[str, bool], float] = {}
    values: dict[tuple[str, str], float] = {}
    for states, converted, revenue in paths:
        path = collapse(states) if collapsed else states
        for move in zip([START, *path], path, strict=False):
            moves[move] = moves.get(move, 0) + 1
        ends[path[-1], converted] = ends.get((path[-1], converted), 0) + 1
        if converted:
            values[path[-1], "EUR"] = values.get((path[-1], "EUR"), 0) + revenue
    return Transitions(moves, ends, values)


def test_removal_effects_of_a_small_chain_are_as_worked_out_by_hand():
    # Paths: A > B converts (100 EUR), A does not, B converts (50 EUR).
    # start -> A 2/3, -> B 1/3; A -> B 1/2, A -> null 1/2; B -> conversion 1.
    # P(conversion) = 2/3 * 1/2 + 1/3 = 2/3. Without A: 1/3, so RE(A) = 1/2; without B: 0,
    # RE(B) = 1. Two conversions shared 1/2 : 1: A 2/3, B 4/3.
    # Revenue: a conversion through B is worth (100 + 50) / 2 = 75. Removing A loses 1/3 of
    # them (25), removing B all of them (50): A 150 * 25/75 = 50, B 100.
    found = {
        r.state: r
        for r in removals(chain([(["A", "B"], True, 100), (["A"], False, 0), (["B"], True, 50)]))
    }

    assert found["A"].removal_effect == pytest.approx(0.5)
    assert found["B"].removal_effect == pytest.approx(1.0)
    assert found["A"].conversions == pytest.approx(2 / 3)
    assert found["B"].conversions == pytest.approx(4 / 3)
    assert found["A"].value == pytest.approx({"EUR": 50.0})
    assert found["B"].value == pytest.approx({"EUR": 100.0})


def test_a_channel_repeated_in_a_row_counts_once():
    assert collapse(["A", "A", "B", "A", "A"]) == ["A", "B", "A"]


def test_no_conversions_credit_nothing():
    found = removals(chain([(["A"], False, 0), (["B", "A"], False, 0)]))

    assert [(r.state, r.conversions) for r in found] == [("A", 0.0), ("B", 0.0)]


# --- conservation ---------------------------------------------------------------------------

KINDS = ("page_view", "email_click", "form_fill", "webinar_attended", "demo_request", "cart_add")
journeys = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 120),  # day
        st.sampled_from([None, *CHANNELS]),  # campaign
        st.booleans(),  # identified
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(journey=journeys, purchase_day=st.one_of(st.none(), st.integers(0, 150)))
def test_every_model_shares_each_conversion_out_whole(journey, purchase_day):
    facts = [
        Touch(
            fact_id=f"f{i:03d}",
            at=T0 + timedelta(days=day),
            kind=kind,
            identified=identified,
            campaign_id=campaign,
            channel=CHANNELS.get(campaign or ""),
        )
        for i, (kind, day, campaign, identified) in enumerate(journey)
    ]
    if purchase_day is not None:
        facts.append(
            Touch(
                fact_id="purchase",
                at=T0 + timedelta(days=purchase_day),
                kind="purchase",
                identified=True,
                amount_minor=100,
                currency="EUR",
            )
        )
    view = fold(facts, default_rulebook())

    totals: dict[Conversion, list[float]] = {}
    for credit in shares(view, default_rulebook()):
        assert all(0.0 <= share <= 1.0 + 1e-12 for share in credit.shares)
        summed = totals.setdefault(credit.conversion, [0.0] * len(HEURISTIC_MODELS))
        for m, share in enumerate(credit.shares):
            summed[m] += share
    made = {c for c in Conversion if view.is_lead and _converted(view, c)}
    assert set(totals) == made
    for summed in totals.values():
        assert summed == pytest.approx([1.0] * len(HEURISTIC_MODELS))


def _converted(view, conversion: Conversion) -> bool:
    stages = {
        Conversion.LEAD: (Stage.LEAD,),
        Conversion.MQL: (Stage.MQL,),
        Conversion.SQL: (Stage.SQL, Stage.PQL),
        Conversion.CUSTOMER: (Stage.CUSTOMER,),
    }[conversion]
    return any(view.became_at(stage) for stage in stages)


paths = st.lists(
    st.tuples(
        st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=8),
        st.booleans(),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(paths=paths)
def test_the_data_driven_model_shares_out_every_conversion_and_its_revenue(paths):
    found = removals(chain(paths))

    converted = [(states, revenue) for states, done, revenue in paths if done]
    assert sum(r.conversions for r in found) == pytest.approx(len(converted))
    assert all(0.0 <= r.removal_effect <= 1.0 + 1e-9 for r in found)
    revenue = sum(revenue for _, revenue in converted)
    if revenue:
        assert sum(r.value.get("EUR", 0.0) for r in found) == pytest.approx(revenue)


def test_moves_of_a_state_to_itself_change_no_removal_effect():
    # The chain over channels reads each campaign as its channel: two campaigns of one channel
    # in a row become that channel's move to itself. It must credit as the collapsed path does.
    paths = [(["A", "B", "C"], True, 10), (["B", "C"], False, 0), (["A", "C", "C"], True, 30)]
    looped = {r.state: r for r in removals(chain_with_repeats(paths))}

    for r in removals(chain(paths)):
        assert looped[r.state].removal_effect == pytest.approx(r.removal_effect)
        assert looped[r.state].conversions == pytest.approx(r.conversions)
        assert looped[r.state].value == pytest.approx(r.value)


def chain_with_repeats(paths: list[tuple[list[str], bool, float]]) -> Transitions:
    """As ``chain``, each state repeated in a row (a move to itself after every move in)."""
    return chain(
        [([s for state in states for s in (state, state)], done, v) for states, done, v in paths],
        collapsed=False,
    )
