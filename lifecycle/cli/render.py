"""How the terminal shows things: a lead's report, the funnel and cost per lead, with rich."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from lifecycle.domain.money import amounts, money

if TYPE_CHECKING:
    from rich.console import Console

    from lifecycle.ledger.report import LeadReport
    from lifecycle.projections.queries import CostRow, Funnel


def when(instant: datetime | None, *, seconds: bool = False) -> str:
    """An instant in UTC to the minute (or second), ``-`` for none."""
    if instant is None:
        return "-"
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def progress_bars(console: Console, *, rate: bool = False, always: bool = False) -> Progress:
    """Bars of items done, with the time elapsed (or, with ``rate``, the speed and time left).

    Hidden when ``console`` is no terminal, unless ``always``.
    """
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if rate:
        columns += [TaskProgressColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    else:
        columns.append(TimeElapsedColumn())
    return Progress(*columns, console=console, disable=not (always or console.is_terminal))


def print_lead(console: Console, report: LeadReport) -> None:
    """Tables for a terminal."""
    console.print(f"[bold]Lead {report.lead_id}[/bold] as of {when(report.as_of)} UTC")
    if report.stage is None:
        console.print("No facts yet at that time: the lead did not exist.")
        return
    summary = Table.grid(padding=(0, 2))
    for name, value in (
        ("stage", report.stage.value),
        ("temperature", report.temperature.value if report.temperature else "-"),
        ("score", f"{report.score:.1f} = fit {report.fit} + engagement {report.engagement:.1f}"),
        ("hot until", when(report.hot_until)),
        ("warm until", when(report.warm_until)),
        ("acquisition", f"{report.acquisition_campaign or '-'} ({report.acquisition_channel})"),
        ("revenue", amounts(report.revenue)),
        ("identities", ", ".join(report.identities) or "-"),
        ("rules", report.rules_version),
    ):
        summary.add_row(f"[bold]{name}[/bold]", value)
    console.print(summary)
    history = Table("stage", "entered", "left", "because of fact", title="Stage history")
    for move in report.stage_history:
        history.add_row(
            move.stage.value, when(move.entered_at), when(move.exited_at), move.fact_id[:12]
        )
    console.print(history)
    # Every cell whole (kinds and campaign ids fold where they must), readable in 80 columns.
    timeline = Table(title="Timeline", box=None, padding=(0, 1, 0, 0))
    timeline.add_column("at", no_wrap=True)
    for name in ("what", "campaign", "detail"):
        timeline.add_column(name, overflow="fold")
    timeline.add_column("fact", no_wrap=True, min_width=12)
    for entry in report.timeline:
        timeline.add_row(
            when(entry.at),
            entry.what,
            entry.campaign or "",
            entry.detail or "",
            entry.fact_id[:12],
        )
    console.print(timeline)


def print_funnel(console: Console, result: Funnel) -> None:
    """The funnel as terminal tables."""
    reached = Table("stage", "leads that reached it", title="Funnel")
    for stage, leads in result.reached.items():
        reached.add_row(stage.replace("_", " "), str(leads))
    console.print(reached)
    steps = Table("step", "conversion", "median days")
    for step, rate in result.conversion.items():
        days = result.median_days.get(step)
        steps.add_row(
            step.replace("_", " "),
            "-" if rate is None else f"{rate:.1%}",
            "-" if days is None else f"{days:.1f}",
        )
    console.print(steps)
    console.print(f"Revenue of these leads: {amounts(result.revenue_minor)}")


def print_costs(console: Console, rows: list[CostRow], by: str) -> None:
    """Cost per lead as two terminal tables (volumes, then costs), narrow enough for 80 columns.

    Amounts are in major units; ``--json`` and ``--csv`` give them whole, in minor units.
    """
    volumes = Table(title=f"Cost per lead by {by}: volumes")
    costs = Table(title=f"Cost per lead by {by}: costs")
    for table in (volumes, costs):
        table.add_column(by, overflow="fold")
        table.add_column("cur", no_wrap=True)
    for name in ("spend", "leads", "MQLs", "SQLs", "customers", "revenue"):
        volumes.add_column(name, justify="right", no_wrap=True)
    for name in ("CPL", "per MQL", "per SQL", "per customer", "ROI"):
        costs.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        volumes.add_row(
            row.group,
            row.currency,
            money(row.spend_minor, decimals=0),
            str(row.leads),
            str(row.mqls),
            str(row.sqls),
            str(row.customers),
            money(row.revenue_minor, decimals=0),
        )
        costs.add_row(
            row.group,
            row.currency,
            money(row.cpl, decimals=0),
            money(row.cost_per_mql, decimals=0),
            money(row.cost_per_sql, decimals=0),
            money(row.cost_per_customer, decimals=0),
            "-" if row.roi is None else f"{row.roi:.0%}",
        )
    console.print(volumes)
    console.print(costs)
