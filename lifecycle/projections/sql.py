"""Statements in one transaction on SQLite or PostgreSQL, and the names of the two slots.

Every module that writes or reads the view tables takes a ``Transaction`` from the store
(``projections/store.py``) and writes its SQL with ``?`` placeholders.
"""

from __future__ import annotations

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
        self._cursor.execute(self._sql(sql), self._params(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run a statement once per row (in one call to the driver)."""
        if rows:
            self._cursor.executemany(self._sql(sql), [self._params(row) for row in rows])

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

    def _params(self, values: Sequence[Any]) -> Sequence[Any]:
        if self.dialect != "sqlite":
            return values
        # SQLite keeps instants as fixed-width ISO text, so that they compare as strings.
        # (Exact types, checked inline: replays bind millions of values.)
        return [
            schema.sqlite_instant(v)
            if type(v) is datetime
            else v.isoformat()
            if type(v) is date
            else v
            for v in values
        ]
