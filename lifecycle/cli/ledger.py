"""Ledger commands: import, lead show, schemas."""

from __future__ import annotations

import gzip
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from lifecycle.cli.common import (
    RulesOption,
    app,
    err,
    fail,
    load_settings,
    open_engine,
    out,
    parse_instant,
    require_store,
)
from lifecycle.cli.render import print_lead, progress_bars
from lifecycle.contracts import schemadoc
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.ledger.importer import ImportReport, import_lines
from lifecycle.ledger.report import lead_report

lead_app = typer.Typer(help="Look at one lead.", no_args_is_help=True)
schemas_app = typer.Typer(help="The JSON Schema and AsyncAPI documents in schemas/.")
app.add_typer(lead_app, name="lead")
app.add_typer(schemas_app, name="schemas")


def _open_lines(source: str) -> Iterator[bytes]:
    if source == "-":
        yield from sys.stdin.buffer
        return
    path = Path(source)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as lines:
            yield from lines
    except (OSError, EOFError, zlib.error) as error:
        reason = getattr(error, "strerror", None) or error or "truncated file"
        raise fail(f"cannot read {source}: {reason}") from None


def _count_lines(source: str) -> int | None:
    if source == "-":
        return None
    return sum(1 for _ in _open_lines(source))


def _run_import(engine: LeadLifecycle, source: str, batch_size: int) -> ImportReport:
    total = _count_lines(source)
    with progress_bars(err) as progress:
        task = progress.add_task("importing", total=total)
        return import_lines(
            engine,
            _open_lines(source),
            batch_size=batch_size,
            progress=lambda lines: progress.update(task, completed=lines),
        )


def _print_import_report(report: ImportReport, rejects: Path | None) -> None:
    err.print(
        f"{report.recorded} recorded, {report.duplicates} already recorded, "
        + (f"{report.suppressed} suppressed (forgotten people), " if report.suppressed else "")
        + f"{len(report.rejected)} rejected (of {report.lines} lines)",
        highlight=False,
    )
    for rejected in report.rejected[:20]:
        err.print(f"  line {rejected.line}: {rejected.reason} (at {rejected.field})", markup=False)
    if len(report.rejected) > 20:
        err.print(f"  ... and {len(report.rejected) - 20} more", highlight=False)
    if rejects is not None:
        try:
            rejects.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in report.rejected))
        except OSError as error:
            raise fail(f"cannot write {rejects}: {error.strerror}") from None
        err.print(f"rejected lines listed in {rejects}", highlight=False)


@app.command("import")
def import_command(
    source: Annotated[str, typer.Argument(help="JSON lines of CloudEvents (.gz ok); - for stdin.")],
    rules: RulesOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per transaction.")] = 500,
    rejects: Annotated[
        Path | None, typer.Option(help="Also write the rejected lines' reasons here (JSON lines).")
    ] = None,
) -> None:
    """Record CloudEvents from a file; report rejected lines (exit 1 if any were rejected)."""
    with open_engine(load_settings(), rules=rules) as engine:
        report = _run_import(engine, source, batch_size)
    _print_import_report(report, rejects)
    if report.rejected:
        raise typer.Exit(1)


@lead_app.command("show")
def lead_show(
    reference: Annotated[
        str,
        typer.Argument(
            help="A lead id; email:..., phone:..., anonymous:..., customer:...; "
            "or a bare e-mail or phone."
        ),
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Fold only facts up to this time (RFC 3339; UTC if no offset)."
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    rules: RulesOption = None,
) -> None:
    """Stage, stage history, score, temperature, acquisition and timeline of one lead."""
    instant = parse_instant(as_of)
    settings = load_settings()
    require_store(settings)
    with open_engine(settings, rules=rules) as engine:
        report = lead_report(engine, engine.resolve(reference), as_of=instant)
    if json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(report)) + b"\n")
    else:
        print_lead(out, report)


@schemas_app.command("write")
def schemas_write(
    directory: Annotated[Path, typer.Argument(help="Where to write them.")] = Path("schemas"),
) -> None:
    """Regenerate the schema documents from the wire contracts."""
    for path in schemadoc.write(directory):
        out.print(f"wrote {path}", highlight=False)


@schemas_app.command("check")
def schemas_check(
    directory: Annotated[Path, typer.Argument(help="Where they are.")] = Path("schemas"),
) -> None:
    """Fail (exit 1) if the schema documents differ from the wire contracts."""
    stale = schemadoc.stale(directory)
    if stale:
        raise fail(f"stale: {', '.join(stale)}; run `make schemas`", code=1)
    out.print("schemas are up to date")
