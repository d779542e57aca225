"""Which sources bring customers: attribution by model, lead quality, cohort curves, trends.

Each answer reads the totals the views worker keeps (``projections.credit``); none folds the
leads. ``from`` and ``to`` are days (UTC): the period is [from, to), of conversion days for
attribution and of acquisition days for quality, cohorts and the trend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Final

from litestar import get
from litestar.datastructures import State

from lifecycle.api.parameters import (
    BAD_REQUEST,
    NO_TOKEN,
    api_of,
    day_parameter,
    instant_parameter,
    one_of,
    read_choice,
    read_day,
    read_instant,
)
from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.projections import attribution as credited
from lifecycle.projections import quality as quality_views

GROUPINGS: Final = ("campaign", "channel", "month")
MODELS: Final = tuple(model.value for model in Model)
CONVERSIONS: Final = tuple(conversion.value for conversion in Conversion)

By = Annotated[str, one_of(GROUPINGS, "What a row is")]
ConversionParameter = Annotated[
    str, one_of(CONVERSIONS, "The stage whose reaching counts (sql: sales-ready)")
]
From = Annotated[str | None, day_parameter("from", "The period's first day")]
To = Annotated[str | None, day_parameter("to", "The day after the period")]
AsOf = Annotated[
    str | None, instant_parameter("as_of", "Only facts up to this instant (default now)")
]


def _period(since: str | None, until: str | None) -> credited.Period:
    return credited.Period(read_day("from", since), read_day("to", until))


def _question(conversion: str, by: str, since: str | None, until: str | None) -> credited.Question:
    read_choice("by", by, GROUPINGS)
    read_choice("conversion", conversion, CONVERSIONS)
    return credited.Question(Conversion(conversion), by, _period(since, until))  # type: ignore[arg-type]


@dataclass
class AttributionAnswer:
    """The period's conversions credited under one model (they sum to ``conversions``)."""

    model: str
    by: str
    conversion: str
    conversions: int
    lookback_days: float
    computed_at: datetime
    """When this was computed from the views (markov is solved for each answer)."""
    items: list[credited.Credited]


@get("/attribution", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_attribution(  # noqa: PLR0913 (one argument per query parameter)
    state: State,
    *,
    model: Annotated[str | None, one_of(MODELS, "The model (default: the rulebook's)")] = None,
    by: By = "campaign",
    conversion: ConversionParameter = "customer",
    from_: From = None,
    to: To = None,
) -> AttributionAnswer:
    """Conversions in [from, to) credited to campaigns, channels or months under a model.

    With spend (reports whose period starts in [from, to)), cost per conversion and ROI.
    """
    api = api_of(state)
    rules = api.engine.rules
    chosen = Model(read_choice("model", model, MODELS) or rules.attribution_model)
    question = _question(conversion, by, from_, to)
    with api.reading() as (views, tx):
        answer = credited.attribution(tx, views.active_slot(tx), chosen, question)
    return AttributionAnswer(
        model=answer.model,
        by=by,
        conversion=conversion,
        conversions=answer.conversions,
        lookback_days=rules.lookback.total_seconds() / 86400,
        computed_at=datetime.now(UTC),
        items=answer.items,
    )


@dataclass
class ModelsCredit:
    """One group's credit under every model, side by side."""

    group: str | None
    credit: dict[str, float] = field(default_factory=dict)
    revenue_minor: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class CompareAnswer:
    """Every model's credit per group, for the same conversions."""

    by: str
    conversion: str
    conversions: int
    models: list[str]
    items: list[ModelsCredit]


@get("/attribution/compare", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def compare_models(
    state: State,
    *,
    by: By = "campaign",
    conversion: ConversionParameter = "customer",
    from_: From = None,
    to: To = None,
) -> CompareAnswer:
    """Each group's credit under each model, side by side."""
    question = _question(conversion, by, from_, to)
    groups: dict[str | None, ModelsCredit] = {}
    conversions = 0
    with api_of(state).reading() as (views, tx):
        slot = views.active_slot(tx)
        for model in Model:
            answer = credited.attribution(tx, slot, model, question)
            conversions = answer.conversions
            for item in answer.items:
                row = groups.setdefault(item.group, ModelsCredit(item.group))
                row.credit[model.value] = item.credit
                row.revenue_minor[model.value] = item.revenue_minor
    for row in groups.values():
        for name in MODELS:
            row.credit.setdefault(name, 0.0)
            row.revenue_minor.setdefault(name, {})
    return CompareAnswer(
        by=by,
        conversion=conversion,
        conversions=conversions,
        models=list(MODELS),
        items=sorted(groups.values(), key=lambda g: (g.group is None, g.group or "")),
    )


def _asked(
    conversion: str, since: str | None, until: str | None, as_of: str | None
) -> quality_views.Asked:
    read_choice("conversion", conversion, CONVERSIONS)
    period = _period(since, until)
    at = read_instant("as_of", as_of) or datetime.now(UTC)
    return quality_views.Asked(Conversion(conversion), at, period)


@get("/quality", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_quality(  # noqa: PLR0913 (one argument per query parameter)
    state: State,
    *,
    by: By = "campaign",
    conversion: ConversionParameter = "customer",
    from_: From = None,
    to: To = None,
    as_of: AsOf = None,
) -> quality_views.Quality:
    """Per source of the leads acquired in [from, to): how well they convert, how sure that is.

    The conversion rate with its 95% Wilson interval, revenue per lead, and whether the source
    converts better or worse than all the others together (a two-proportion z-test at 5%).
    """
    read_choice("by", by, GROUPINGS)
    asked = _asked(conversion, from_, to, as_of)
    with api_of(state).reading() as (views, tx):
        return quality_views.quality(tx, views.active_slot(tx), asked, by)  # type: ignore[arg-type]


@get("/cohorts", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_cohorts(  # noqa: PLR0913 (one argument per query parameter)
    state: State,
    *,
    by: By = "campaign",
    conversion: ConversionParameter = "customer",
    from_: From = None,
    to: To = None,
    as_of: AsOf = None,
) -> quality_views.Cohorts:
    """Per source, the share of its leads converted by each day after their acquisition.

    For leads acquired in [from, to), by Kaplan-Meier: leads too young to tell are censored,
    not counted as failures. With the median days to convert, where the curve reaches half.
    """
    read_choice("by", by, GROUPINGS)
    asked = _asked(conversion, from_, to, as_of)
    with api_of(state).reading() as (views, tx):
        return quality_views.cohorts(tx, views.active_slot(tx), asked, by)  # type: ignore[arg-type]


@dataclass
class TrendAnswer:
    """New leads and conversions per week and channel."""

    conversion: str
    as_of: datetime
    weeks: list[quality_views.Week]


@get("/trend", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_trend(
    state: State,
    *,
    conversion: ConversionParameter = "customer",
    from_: From = None,
    to: To = None,
    as_of: AsOf = None,
) -> TrendAnswer:
    """Per week (from Monday, UTC) and channel: new leads, and conversions made that week.

    Of the leads acquired in [from, to), as of ``as_of``.
    """
    asked = _asked(conversion, from_, to, as_of)
    with api_of(state).reading() as (views, tx):
        weeks = quality_views.trend(tx, views.active_slot(tx), asked)
    return TrendAnswer(conversion=conversion, as_of=asked.as_of, weeks=weeks)


HANDLERS: Final = (get_attribution, compare_models, get_quality, get_cohorts, get_trend)
