"""The closed vocabularies of the domain: touchpoint kinds, channels, seniorities, stages."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

Kind = Literal[
    "page_view",
    "email_open",
    "email_click",
    "social_engagement",
    "newsletter_signup",
    "form_fill",
    "content_download",
    "webinar_attended",
    "pricing_page_view",
    "product_question",
    "demo_request",
    "quote_request",
    "cart_add",
    "trial_start",
    "product_usage",
    "upgrade_intent",
    "referral",
    "review",
    "support_upgrade_request",
    "purchase",
    "unsubscribe",
]
KINDS: tuple[str, ...] = get_args(Kind)

Channel = Literal[
    "organic_search",
    "paid_search",
    "social",
    "paid_social",
    "email",
    "display",
    "referral",
    "events",
    "partner",
    "direct",
    "other",
]
CHANNELS: tuple[str, ...] = get_args(Channel)

Seniority = Literal["c_level", "vp", "director", "manager", "individual", "other"]
SENIORITIES: tuple[str, ...] = get_args(Seniority)


class Stage(StrEnum):
    """Lifecycle stages. The rank orders automatic moves (they only go up)."""

    VISITOR = "visitor"
    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    PQL = "pql"
    CUSTOMER = "customer"
    SERVICE_QUALIFIED = "service_qualified"
    DISQUALIFIED = "disqualified"

    @property
    def rank(self) -> int:
        """Visitor 0 ... service_qualified 6; disqualified sits outside the ranks (-1)."""
        return _RANKS[self]


_RANKS = {
    Stage.VISITOR: 0,
    Stage.LEAD: 1,
    Stage.MQL: 2,
    Stage.SQL: 3,
    Stage.PQL: 4,
    Stage.CUSTOMER: 5,
    Stage.SERVICE_QUALIFIED: 6,
    Stage.DISQUALIFIED: -1,
}


class Temperature(StrEnum):
    """How ready a lead is to buy right now."""

    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class Model(StrEnum):
    """How a conversion's credit is shared among the campaign touches that led to it."""

    FIRST_TOUCH = "first_touch"
    LAST_TOUCH = "last_touch"
    LINEAR = "linear"
    POSITION_BASED = "position_based"
    W_SHAPED = "w_shaped"
    TIME_DECAY = "time_decay"
    MARKOV = "markov"


# The models each lead's credit is computed under (the data-driven one needs every lead's path).
HEURISTIC_MODELS = tuple(model for model in Model if model is not Model.MARKOV)


class Conversion(StrEnum):
    """The stage whose reaching counts as converting (``sql``: sales-ready, sql or pql)."""

    LEAD = "lead"
    MQL = "mql"
    SQL = "sql"
    CUSTOMER = "customer"
