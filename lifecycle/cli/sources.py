"""Which sources bring customers: ``lifecycle attribution``, ``quality`` and ``cohorts``.

Tables fit 80 columns; ``--json`` gives the API's answers as JSON lines, ``--csv`` one row per
group and currency (attribution) or per source (quality).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from lifecycle import wiring
from lifecycle.cli.common import (
    app,
    fail,
    load_settings,
    out,
    parse_instant,
    reading_views,
    write_csv,
    write_json_lines,
)
from lifecycle.domain.money import money
from lifecycle.domain.statistics import CurvePoint
from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.errors import LifecycleError
from lifecycle.projections.attribution import Attribution, Period, Question, attribution
from lifecycle.projections.quality import Asked, Cohorts, Quality, cohorts, quality

GROUPINGS = ("campaign", "channel", "month")
ByOption = Annotated[str, typer.Option(help="campaign, channel or month.")]
ConversionOption = Annotated[
    str, typer.Option(help="What counts as converting: lead, mql, sql (sales-ready), customer.")
]
FromOption = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).")]
ToOption = Annotated[str | None, typer.Option("--to", help="The day after the last one.")]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Only facts up to then (default now).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of tables.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (for a spreadsheet).")]
# Short model names for the side-by-side table (80 columns).
SHORT = {
    Model.FIRST_TOUCH: "first",
    Model.LAST_TOUCH: "last",
    Model.LINEAR: "linear",
    Model.POSITION_BASED: "pos.",
    Model.W_SHAPED: "W",
    Model.TIME_DECAY: "decay",
    Model.MARKOV: "markov",
}


NO_CAMPAIGN = "(no campaign)"


def _table(title: str, first: str, groups: list[str | None]) -> Table:
    """A table with few borders: 80 columns hold a whole campaign id and six figures."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False)
    widest = max((len(g or NO_CAMPAIGN) for g in groups), default=len(first))
    table.add_column(first, overflow="fold", min_width=min(widest, 30))
    return table


def _checked(by: str, conversion: str, *, json: bool = False, csv: bool = False) -> Conversion:
    if by not in GROUPINGS:
        raise fail("--by must be campaign, channel or month")
    if conversion not in set(Conversion):
        raise fail(f"--conversion must be one of {', '.join(Conversion)}")
    if json and csv:
        raise fail("--json and --csv: choose one")
    return Conversion(conversion)


def _period(since: str | None, until: str | None) -> Period:
    return Period(_day(since, "--from"), _day(until, "--to"))


def _day(text: str | None, option: str) -> date | None:
    moment = parse_instant(text, option)
    if moment is None:
        return None
    if moment.timetz().replace(tzinfo=None) != datetime.min.time() or len(text or "") != 10:
        raise fail(f"{option} takes a day, YYYY-MM-DD (periods here are whole UTC days)")
    return moment.date()


@app.command("attribution")
def attribution_command(  # noqa: PLR0913 (one argument per option)
    *,
    model: Annotated[
        str | None,
        typer.Option(help=f"{', '.join(Model)} (default: the rulebook's)."),
    ] = None,
    by: ByOption = "campaign",
    conversion: ConversionOption = "customer",
    since: FromOption = None,
    until: ToOption = None,
    compare: Annotated[
        bool, typer.Option("--compare", help="Every model side by side (credits).")
    ] = False,
    json: JsonOption = False,
    csv: CsvOption = False,
) -> None:
    """Conversions credited to campaigns, channels or months, with spend, cost and ROI."""
    chosen = _checked(by, conversion, json=json, csv=csv)
    if model is not None and model not in set(Model):
        raise fail(f"--model must be one of {', '.join(Model)}")
    settings = load_settings()
    try:
        default = wiring.rulebook(settings).attribution_model
    except LifecycleError as error:
        raise fail(str(error)) from None
    question = Question(chosen, by, _period(since, until))  # type: ignore[arg-type]
    models = list(Model) if compare else [Model(model or default)]
    with reading_views(settings) as (_, tx, slot):
        answers = [attribution(tx, slot, m, question) for m in models]
    if json:
        write_json_lines(answers)
    elif csv:
        _attribution_csv(answers)
    elif compare:
        print_compared(answers)
    else:
        _print_attribution(answers[0])


def _attribution_csv(answers: list[Attribution]) -> None:
    columns = ("model", "group", "credit", "currency", "revenue_minor", "spend_minor")
    rows: list[tuple[object, ...]] = []
    for answer in answers:
        for item in answer.items:
            currencies = sorted(set(item.revenue_minor) | set(item.spend_minor)) or [""]
            rows.extend(
                (
                    answer.model,
                    item.group or "",
                    item.credit,
                    currency,
                    item.revenue_minor.get(currency, 0),
                    item.spend_minor.get(currency, 0),
                )
                for currency in currencies
            )
    write_csv(columns, rows)


def _print_attribution(answer: Attribution) -> None:
    table = _table(
        f"{answer.conversions} {answer.conversion} conversions credited by "
        f"{answer.model}, by {answer.by}",
        answer.by,
        [item.group for item in answer.items],
    )
    table.add_column("credit", justify="right", no_wrap=True)
    table.add_column("cur", no_wrap=True)
    for name in ("revenue", "spend", "per conv.", "ROI"):
        table.add_column(name, justify="right", no_wrap=True)
    for item in answer.items:
        currencies = sorted(set(item.revenue_minor) | set(item.spend_minor)) or [""]
        for i, currency in enumerate(currencies):
            roi = item.roi.get(currency)
            table.add_row(
                (item.group or NO_CAMPAIGN) if i == 0 else "",
                f"{item.credit:.2f}" if i == 0 else "",
                currency,
                money(item.revenue_minor.get(currency), decimals=0),
                money(item.spend_minor.get(currency), decimals=0),
                money(item.cost_per_conversion.get(currency), decimals=0),
                "-" if roi is None else f"{roi:.0%}",
            )
    out.print(table)


def print_compared(answers: list[Attribution]) -> None:
    """Every model's credit per group, side by side."""
    first = answers[0]
    table = _table(
        f"{first.conversions} {first.conversion} conversions, by {first.by}: "
        "the credit each model gives",
        first.by,
        [item.group for answer in answers for item in answer.items],
    )
    for answer in answers:
        table.add_column(SHORT[Model(answer.model)], justify="right", no_wrap=True)
    groups = sorted(
        {item.group for answer in answers for item in answer.items},
        key=lambda g: (g is None, g or ""),
    )
    credit = {(a.model, i.group): i.credit for a in answers for i in a.items}
    for group in groups:
        table.add_row(
            group or NO_CAMPAIGN,
            *(f"{credit.get((a.model, group), 0.0):.1f}" for a in answers),
        )
    out.print(table)


@app.command("quality")
def quality_command(  # noqa: PLR0913 (one argument per option)
    *,
    by: ByOption = "campaign",
    conversion: ConversionOption = "customer",
    since: FromOption = None,
    until: ToOption = None,
    as_of: AsOfOption = None,
    json: JsonOption = False,
    csv: CsvOption = False,
) -> None:
    """Per source: leads, conversions, rate with its 95% interval, revenue per lead, a test."""
    asked = _asked(by, conversion, since, until, as_of, json=json, csv=csv)
    with reading_views(load_settings()) as (_, tx, slot):
        answer = quality(tx, slot, asked, by)  # type: ignore[arg-type]
    if json:
        write_json_lines([answer])
    elif csv:
        write_csv(
            ("group", "leads", "conversions", "rate", "low", "high", "verdict", "p_value"),
            (
                (i.group or "", i.leads, i.conversions, i.rate, i.low, i.high, i.verdict, i.p_value)
                for i in answer.items
            ),
        )
    else:
        _print_quality(answer)


def _asked(  # noqa: PLR0913 (the options every quality command takes)
    by: str,
    conversion: str,
    since: str | None,
    until: str | None,
    as_of: str | None,
    *,
    json: bool = False,
    csv: bool = False,
) -> Asked:
    chosen = _checked(by, conversion, json=json, csv=csv)
    at = parse_instant(as_of) or datetime.now(UTC)
    return Asked(chosen, at, _period(since, until))


VERDICTS = {
    "better": "better",
    "worse": "worse",
    "no_difference": "no diff.",
    "too_few_leads": "too few",
}


def _print_quality(answer: Quality) -> None:
    table = _table(
        f"Lead quality by {answer.by}: {answer.conversions} of {answer.leads} leads "
        f"reached {answer.conversion} (as of {answer.as_of:%Y-%m-%d %H:%M})",
        answer.by,
        [item.group for item in answer.items],
    )
    for name in ("leads", "conv.", "rate", "95% CI", "vs rest", "rev./lead"):
        table.add_column(name, justify="right", no_wrap=True)
    for item in answer.items:
        revenue = "\n".join(money(v, c, decimals=0) for c, v in item.revenue_per_lead.items())
        table.add_row(
            item.group or NO_CAMPAIGN,
            str(item.leads),
            str(item.conversions),
            "-" if item.rate is None else f"{item.rate:.1%}",
            "-" if item.low is None else f"{item.low * 100:.0f}-{item.high:.0%}",
            VERDICTS[item.verdict],
            revenue or "-",
        )
    out.print(table)
    out.print(
        "rate: conversions / leads; interval: Wilson 95%; vs rest: a two-proportion z-test "
        "at 5% against all other leads together (at least 30 leads on each side)."
    )


@app.command("cohorts")
def cohorts_command(  # noqa: PLR0913 (one argument per option)
    *,
    by: ByOption = "campaign",
    conversion: ConversionOption = "customer",
    since: FromOption = None,
    until: ToOption = None,
    as_of: AsOfOption = None,
    days: Annotated[str, typer.Option(help="The days to show, comma-separated.")] = "7,30,60",
    json: JsonOption = False,
) -> None:
    """Per source: the share converted by day d after acquisition (Kaplan-Meier), the median."""
    try:
        shown = [int(d) for d in days.split(",")]
    except ValueError:
        raise fail("--days takes whole days, comma-separated, e.g. 7,30,60") from None
    if any(d < 0 for d in shown):
        raise fail("--days takes whole days, comma-separated, e.g. 7,30,60")
    asked = _asked(by, conversion, since, until, as_of, json=json)
    with reading_views(load_settings()) as (_, tx, slot):
        answer = cohorts(tx, slot, asked, by)  # type: ignore[arg-type]
    if json:
        write_json_lines([answer])
    else:
        _print_cohorts(answer, shown)


def share_by(curve: list[CurvePoint], day: int) -> float | None:
    """The share converted by the end of ``day`` (None: no lead was followed that long).

    A cohort whose every lead converted stays whole after its last day.
    """
    if not curve or (day > curve[-1].day and curve[-1].share < 1.0):
        return None
    return next((p.share for p in reversed(curve) if p.day <= day), 0.0)


def _print_cohorts(answer: Cohorts, days: list[int]) -> None:
    table = _table(
        f"Share of leads that reached {answer.conversion}, by day after acquisition "
        f"(Kaplan-Meier, as of {answer.as_of:%Y-%m-%d})",
        answer.by,
        [item.group for item in answer.items],
    )
    for name in ("leads", "conv.", "median", *(f"day {d}" for d in days)):
        table.add_column(name, justify="right", no_wrap=True)
    for item in answer.items:
        shares = [share_by(item.curve, d) for d in days]
        table.add_row(
            item.group or NO_CAMPAIGN,
            str(item.leads),
            str(item.conversions),
            "-" if item.median_days is None else f"{item.median_days} d",
            *("-" if s is None else f"{s:.0%}" for s in shares),
        )
    out.print(table)
    out.print(
        "Leads too young to have converted count until their age, not as failures; "
        "'-': no lead of the source was followed that long."
    )
