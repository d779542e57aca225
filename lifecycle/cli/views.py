"""View commands: replay, what-if, and the funnel and cost per lead as terminal tables."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from kafka.errors import KafkaError
from rich import box
from rich.table import Table

from consumers.views import KafkaLeadEvents
from consumers.worker import collect_garbage_less_often
from lifecycle import wiring
from lifecycle.cli.common import (
    RulesOption,
    app,
    err,
    fail,
    load_settings,
    open_engine,
    open_views,
    out,
    parse_instant,
    reading_views,
    require_store,
    write_csv,
    write_json_lines,
)
from lifecycle.cli.render import print_costs, print_funnel, progress_bars, when
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.queries import (
    Filters,
    cost_per_lead,
    funnel,
    sla_breaches,
)
from lifecycle.projections.replay import Progress as ReplayProgress
from lifecycle.projections.replay import fill_from_log, fill_from_store, swap, what_if
from lifecycle.projections.schema import instant
from lifecycle.projections.store import ViewStore
from lifecycle.rules import load_rulebook
from lifecycle.settings import Settings


@contextmanager
def _folding(
    settings: Settings, rules: Path | None, doing: str
) -> Iterator[tuple[LeadLifecycle, ViewStore, ReplayProgress]]:
    """The engine, the views and a progress bar, for a command that folds the whole history."""
    store = open_views(settings)
    try:
        with open_engine(settings, rules=rules) as engine, progress_bars(err, rate=True) as bar:
            task = bar.add_task(doing, total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            yield engine, store, advance
    finally:
        store.close()


COST_COLUMNS = (
    "group",
    "currency",
    "spend_minor",
    "leads",
    "mqls",
    "sqls",
    "customers",
    "revenue_minor",
    "cpl",
    "cost_per_mql",
    "cost_per_sql",
    "cost_per_customer",
    "roi",
)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV (for a spreadsheet).")]


@app.command()
def replay(
    source: Annotated[str, typer.Option(help="Rebuild from the event store or lead.events.")] = (
        "store"
    ),
    rules: RulesOption = None,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            help="Record what the new views would announce as announced, without sending it.",
        ),
    ] = False,
) -> None:
    """Rebuild every view beside the live ones, then swap them in atomically (blue/green).

    Nothing is announced while it works. Under other rules than the live views', what changes
    for each lead is announced once after the swap (cause "rules"), unless --quiet.
    """
    if source not in {"store", "kafka"}:
        raise fail("--source must be store or kafka")
    settings = load_settings()
    require_store(settings)
    collect_garbage_less_often()
    rulebook = load_rulebook(rules or settings.rules) if rules or settings.rules else None
    try:
        with _folding(settings, rules, f"replaying from {source}") as (engine, store, advance):
            rulebook = rulebook or engine.rules
            if source == "store":
                slot = fill_from_store(engine, store, rulebook, settings, progress=advance)
            else:
                with contextlib.closing(KafkaLeadEvents(settings)) as log:
                    slot = fill_from_log(log, store, rulebook, progress=advance)
            announced = swap(
                store, slot, rulebook, announcer=wiring.announcer(settings, quiet=quiet)
            )
    except KafkaError as error:
        raise fail(f"Kafka at {settings.kafka_bootstrap} failed: {error}") from None
    err.print(
        f"views rebuilt from {source} with rules {rulebook.version} and swapped in; "
        f"{announced} changes announced"
    )


@app.command()
def whatif(
    rules: Annotated[
        str, typer.Option("--rules", help="The rulebook TOML to compare with the live views.")
    ],
    json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Temperature as of.")] = None,
) -> None:
    """Fold the whole history with another rulebook into a shadow view and show the difference."""
    settings = load_settings()
    require_store(settings)
    instant = parse_instant(as_of) or datetime.now(UTC)
    with _folding(settings, None, "folding with other rules") as (engine, store, advance):
        other = load_rulebook(Path(rules))
        shadow = fill_from_store(engine, store, other, settings, progress=advance)
        report = what_if(store, shadow, other, at=instant, sla_hours=settings.sla_hours)
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")
        return
    out.print(
        f"[bold]What if[/bold] rules {report.rules_version} -> {report.shadow_rules_version} "
        f"({report.leads} leads)"
    )
    if not report.differs:
        out.print("No difference: every stage, temperature and cost per lead stays the same.")
        return
    for stage in report.gained:
        if report.lost[stage]:
            out.print(f"{report.lost[stage]} leads would lose {stage.upper()}")
        if report.gained[stage]:
            out.print(f"{report.gained[stage]} leads would become {stage.upper()}")
    for move, leads in sorted(report.moves.items(), key=lambda item: -item[1]):
        out.print(f"{leads} leads would move {move}")
    table = Table("temperature", "now", "would be", title=f"Temperature as of {instant:%Y-%m-%d}")
    for name, (now, would) in report.temperature.items():
        table.add_row(name, str(now), str(would))
    out.print(table)
    if report.announcements:
        out.print("Swapping these views in (lifecycle replay --rules) would announce:")
    for change, many in sorted(report.announcements.items(), key=lambda item: -item[1]):
        out.print(f"{many} {change}")


@app.command("funnel")
def funnel_command(
    campaign: Annotated[str | None, typer.Option(help="Only leads acquired by it.")] = None,
    channel: Annotated[str | None, typer.Option(help="Only leads acquired through it.")] = None,
    since: Annotated[str | None, typer.Option(help="Acquired at or after (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Acquired before (RFC 3339).")] = None,
    json: JsonOption = False,
) -> None:
    """Leads per stage reached, conversion rates and median days between stages."""
    settings = load_settings()
    filters = Filters(
        campaign, channel, parse_instant(since, "--since"), parse_instant(until, "--until")
    )
    if filters.since and filters.until and filters.until < filters.since:
        raise fail("--until is before --since (the period is [since, until))")
    with reading_views(settings) as (_, tx, slot):
        result = funnel(tx, slot, filters)
    if json:
        write_json_lines([result])
    else:
        print_funnel(out, result)


def _one_format(*, json: bool, csv: bool) -> None:
    if json and csv:
        raise fail("--json and --csv: choose one")


@app.command()
def cpl(
    by: Annotated[str, typer.Option(help="campaign, channel or month.")] = "campaign",
    json: JsonOption = False,
    csv: CsvOption = False,
) -> None:
    """Cost per lead, per MQL, per SQL and per customer, revenue and ROI, per currency."""
    if by not in {"campaign", "channel", "month"}:
        raise fail("--by must be campaign, channel or month")
    _one_format(json=json, csv=csv)
    with reading_views(load_settings()) as (_, tx, slot):
        rows = cost_per_lead(tx, slot, by)  # type: ignore[arg-type]
    if json:
        write_json_lines(rows)
    elif csv:
        write_csv(COST_COLUMNS, ([getattr(row, c) for c in COST_COLUMNS] for row in rows))
    else:
        print_costs(out, rows, by)


@app.command()
def sla(
    hours: Annotated[
        int | None, typer.Option(min=1, help="Hand-off time (default LIFECYCLE_SLA_HOURS, 24).")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Judge as of (default now).")] = None,
    json: JsonOption = False,
    csv: CsvOption = False,
) -> None:
    """Sales-ready leads (sql, pql, service_qualified) with no sales touch in time."""
    _one_format(json=json, csv=csv)
    settings = load_settings()
    within = timedelta(hours=hours or settings.sla_hours)
    now = parse_instant(as_of) or datetime.now(UTC)
    with reading_views(settings) as (_, tx, slot):
        breaches = sla_breaches(tx, slot, now, within=within)
    columns = ("lead_id", "stage", "sales_ready_at", "first_sales_touch_at")
    if json:
        write_json_lines(dict(zip(columns, breach, strict=True)) for breach in breaches)
        return
    if csv:
        write_csv(columns, breaches)
        return
    # Whole lead ids (to paste into `lead show`); the instants wrap between date and time.
    table = Table(
        title=f"{len(breaches)} leads not contacted within {within / timedelta(hours=1):g} hours "
        f"(as of {now:%Y-%m-%d %H:%M})",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    table.add_column("lead", no_wrap=True, min_width=36)
    table.add_column("stage", no_wrap=True)
    table.add_column("ready since", min_width=10, overflow="fold")
    table.add_column("first touch", min_width=10, overflow="fold")
    for lead_id, stage, ready, touched in breaches:
        table.add_row(
            lead_id,
            stage,
            f"{ready:%Y-%m-%d %H:%M}",
            f"{touched:%Y-%m-%d %H:%M}" if touched else "-",
        )
    out.print(table)


@app.command()
def parked(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    json: JsonOption = False,
) -> None:
    """Lead events the views could not apply: where each came from and why (newest first)."""
    with reading_views(load_settings()) as (store, tx, _):
        rows = store.parked(tx, limit=limit)
    if json:
        write_json_lines(
            {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "parked_at": instant(at),
                "error": error,
                "value": bytes(value or b"").decode(errors="replace"),
            }
            for topic, partition, offset, at, error, value in rows
        )
        return
    table = Table("from", "parked at", "error", title=f"{len(rows)} parked lead events")
    for topic, partition, offset, at, error, _ in rows:
        table.add_row(f"{topic}[{partition}]@{offset}", when(instant(at), seconds=True), error)
    out.print(table)
