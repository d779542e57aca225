"""Statements in one transaction on SQLite or PostgreSQL, and the names of the two slots.

Every module that writes or reads the view tables takes a ``Transaction`` from the store
(``projections/store.py``) and writes its SQL with ``?`` placeholders.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, Protocol

from lifecycle.projections import schema

Slot = Literal["a", "b"]
SLOTS: tuple[Slot, Slot] = ("a", "b")


class Cursor(Protocol):
    """The part of a DB-API cursor we use."""

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any:  # noqa: ANN401
        """Run one statement."""

    def fetchall(self) -> list[Any]:
        """All rows of the last query."""

    def fetchone(self) -> Any:  # noqa: ANN401
        """One row of the last query."""

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:  # noqa: ANN401
        """Run one statement once per row."""


class Transaction:
    """Statements with ``?`` placeholders, run in one database transaction."""

    def __init__(self, cursor: Cursor, dialect: str) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement."""
        self._cursor.execute(self._sql(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row (in one call to the driver)."""
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query."""
        self.execute(sql, params)
        return [tuple(row) for row in self._cursor.fetchall()]

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:  # noqa: ANN401
        """The first column of the first row (None if there is none)."""
        self.execute(sql, params)
        row = self._cursor.fetchone()
        return None if row is None else row[0]

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgres" else sql


def bind_instants_for_sqlite() -> None:
    """SQLite keeps instants as fixed-width ISO text in UTC, so that they compare as strings.

    Registered with the driver (which calls an adapter only for values of that very type, in
    C) rather than checked value by value here: the views bind millions of values.
    """
    sqlite3.register_adapter(datetime, schema.sqlite_instant)
    sqlite3.register_adapter(date, date.isoformat)
