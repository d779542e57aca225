"""README's queries for BI tools, run as written by each tool over the views."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import duckdb_extension_sqlite
import journeys
import psycopg
import pytest
import scenario

from lifecycle import wiring
from lifecycle.projections import queries
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

README = Path(__file__).parents[2] / "README.md"
# An instant of the scripted history at which leads are hot, warm and cold.
AT = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def readme_query(tool: str) -> str:
    """The SQL block README marks as tested with ``tool``."""
    found = re.search(
        rf"<!-- tested: {tool} -->\n```sql\n(.*?)```", README.read_text(), flags=re.DOTALL
    )
    assert found, f"README has no query marked for {tool}"
    return found.group(1)


def duckdb_over(path: str) -> duckdb.DuckDBPyConnection:
    """DuckDB with the SQLite file attached as ``v`` (the extension from its wheel)."""
    duck = duckdb.connect()
    extension = Path(duckdb_extension_sqlite.__file__).parent / "extensions"
    duck.execute(f"INSTALL '{next(extension.glob('*/sqlite.duckdb_extension'))}'")
    duck.execute("LOAD sqlite")
    duck.execute(f"ATTACH '{path}' AS v (TYPE sqlite, READ_ONLY)")
    return duck


def expected(database_url: str) -> dict[str, int]:
    store = ViewStore(database_url)
    try:
        with store.reading() as tx:
            counts = queries.temperature_counts(tx, store.active_slot(tx), AT)
    finally:
        store.close()
    totals = {"hot": 0, "warm": 0, "cold": 0}
    for (_, temperature), leads in counts.items():
        totals[temperature] += leads
    return {k: v for k, v in totals.items() if v}


def folded(database_url: str, history: list) -> str:
    """A history recorded and folded into the views; the database's URL."""
    engine = wiring.engine_at(database_url)
    engine.record(history)
    store = ViewStore(database_url)
    rules = default_rulebook()
    swap(store, fill_from_store(engine, store, rules, Settings(database_url=database_url)), rules)
    store.close()
    engine.close()
    return database_url


@pytest.fixture
def views(database_url, events) -> str:
    """The scripted history folded into the views; the database's URL."""
    return folded(database_url, events.decode(*scenario.history(events)))


def test_the_readme_temperature_query_counts_what_the_engine_counts_in_each_tool(views):
    want = expected(views)
    assert len(want) == 3, want  # hot, warm and cold leads at that instant
    if views.startswith("sqlite"):
        path = views.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            sql = readme_query("sqlite3").replace("'now'", f"'{AT:%Y-%m-%d %H:%M:%S}'")
            assert dict(connection.execute(sql).fetchall()) == want
        duck = duckdb_over(path)
        sql = readme_query("duckdb").replace("now()", f"TIMESTAMPTZ '{AT.isoformat()}'")
        assert dict(duck.execute(sql).fetchall()) == want
    else:
        server, _, schema = views.partition("?schema=")
        with psycopg.connect(server, options=f"-c search_path={schema}") as connection:
            sql = readme_query("postgres").replace("now()", f"'{AT.isoformat()}'::timestamptz")
            assert dict(connection.execute(sql).fetchall()) == want


@pytest.fixture
def journeys_views(database_url, events) -> str:
    """The journeys of tests/journeys.py folded into the views; the database's URL."""
    return folded(database_url, events.decode(*journeys.history(events)))


def test_the_readme_attribution_query_credits_what_was_worked_out_by_hand_in_each_tool(
    journeys_views,
):
    sql = readme_query("attribution")
    want = pytest.approx(journeys.CREDIT["linear"])
    if journeys_views.startswith("sqlite"):
        path = journeys_views.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            assert dict(connection.execute(sql).fetchall()) == want
        duck = duckdb_over(path)
        duck.execute("USE v")
        assert dict(duck.execute(sql).fetchall()) == want
    else:
        server, _, schema = journeys_views.partition("?schema=")
        with psycopg.connect(server, options=f"-c search_path={schema}") as connection:
            assert dict(connection.execute(sql).fetchall()) == want
