"""What every command shares: the consoles, settings, the engine, errors as exit codes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from eventsourcing.persistence import PersistenceError
from rich.console import Console

from lifecycle.application import LeadLifecycle
from lifecycle.errors import LeadNotFoundError, LifecycleError
from lifecycle.logs import configure_logging
from lifecycle.persistence import eventsourcing_env
from lifecycle.projections.store import ViewStore
from lifecycle.rules import load_rulebook
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


@contextmanager
def open_engine(
    settings: Settings, *, rules: Path | None = None, database_url: str | None = None
) -> Iterator[LeadLifecycle]:
    """Wire the application, and turn engine errors into exit codes and readable messages."""
    try:
        env = eventsourcing_env(database_url or settings.database_url)
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.cache_size)
        engine = LeadLifecycle(env, rules=load_rulebook(rules or settings.rules))
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
        return ViewStore(settings.views_database_url)
    except (LifecycleError, psycopg.Error, sqlite3.Error) as error:
        raise fail(f"cannot open the views database: {error}") from None


def parse_instant(text: str | None, option: str = "--as-of") -> datetime | None:
    """An RFC 3339 time or a date (UTC if it has no offset)."""
    if text is None:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {text!r} is not an RFC 3339 time or a date") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
