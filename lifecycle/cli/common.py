"""What every command shares: the consoles, settings, the engine, errors as exit codes."""

from __future__ import annotations

import csv
import sqlite3
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import msgspec
import psycopg
import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console

from lifecycle import wiring
from lifecycle.adapters.database_url import sqlite_file
from lifecycle.adapters.logs import configure_logging
from lifecycle.domain import instants
from lifecycle.errors import LeadNotFoundError, LifecycleError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.sql import Slot, Transaction
from lifecycle.projections.store import ViewStore
from lifecycle.settings import Settings

app = typer.Typer(
    name="lifecycle",
    help="An event-sourced lead lifecycle engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)

RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="A rulebook TOML overlaying the defaults (LIFECYCLE_RULES)."),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and give the exit to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def load_settings() -> Settings:
    """Settings from the environment, with logging configured; exit 2 if they are unusable."""
    try:
        settings = Settings.from_env()
    except LifecycleError as error:
        raise fail(str(error)) from None
    configure_logging(settings.log_format)
    return settings


def _require_file(database_url: str, what: str) -> None:
    """A command that only reads: a SQLite file that is not there is a mistake, not no data."""
    try:
        file = sqlite_file(database_url)
    except LifecycleError as error:
        raise fail(str(error)) from None
    if file is not None and not file.exists():
        raise fail(
            f"no {what} at {file}: run `lifecycle demo` (or ingest) first, here, "
            "or set LIFECYCLE_DATABASE_URL"
        )


def require_store(settings: Settings) -> None:
    """For a command that only reads the event store: it must be there already."""
    _require_file(settings.database_url, "event store")


@contextmanager
def open_engine(
    settings: Settings,
    *,
    rules: Path | None = None,
    database_url: str | None = None,
) -> Iterator[LeadLifecycle]:
    """Wire the application, and turn engine errors into exit codes and readable messages."""
    try:
        engine = wiring.engine(settings, rules=rules, database_url=database_url)
    except LifecycleError as error:
        raise fail(str(error)) from None
    except PersistenceError as error:
        raise fail(f"cannot open the event store: {error}") from None
    try:
        yield engine
    except LeadNotFoundError as error:
        raise fail(str(error), code=1) from None
    except LifecycleError as error:
        raise fail(str(error)) from None
    except PersistenceError as error:
        raise fail(f"the event store failed: {error}") from None
    finally:
        engine.close()


def open_views(settings: Settings) -> ViewStore:
    """Connect to the views database, or exit 2 saying why not."""
    try:
        return wiring.views(settings)
    except (LifecycleError, psycopg.Error, sqlite3.Error) as error:
        raise fail(f"cannot open the views database: {_first_line(error)}") from None


@contextmanager
def reading_views(settings: Settings) -> Iterator[tuple[ViewStore, Transaction, Slot]]:
    """The views (set up if they are not yet) in one read; exit 2 if the database fails."""
    _require_file(settings.views_database_url, "views database")
    store = open_views(settings)
    try:
        store.setup()
        with store.reading() as tx:
            yield store, tx, store.active_slot(tx)
    except (psycopg.Error, sqlite3.Error) as error:
        raise fail(f"the views database failed: {_first_line(error)}") from None
    finally:
        store.close()


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def write_json_lines(records: Iterable[object]) -> None:
    """One JSON document a line on stdout."""
    for record in records:
        sys.stdout.buffer.write(msgspec.json.encode(record) + b"\n")


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A header and rows as CSV on stdout (for a spreadsheet)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def parse_instant(text: str | None, option: str = "--as-of") -> datetime | None:
    """An RFC 3339 time or a date (UTC if it has no offset), or a one-line failure."""
    if text is None:
        return None
    try:
        return instants.parse_instant(text)
    except ValueError as error:
        raise fail(f"{option} {text!r} {error}") from None
