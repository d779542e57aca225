"""The view tables, on SQLite or PostgreSQL, in two slots behind stable SQL views.

Dashboards (Grafana, Metabase, Superset, the API) read the views named ``lifecycle_<view>``.
Each view selects from the tables of the *active* slot (``a`` or ``b``). A replay builds the
other slot from scratch and then swaps the views over in one transaction (blue/green), so a
reader never sees a half-built view.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

from lifecycle.errors import ConfigurationError
from lifecycle.projections import funnel, schema

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


class ViewStore:
    """Connects to the views database (by URL) and manages the slots."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query))
        self.url = url
        if parts.scheme == "sqlite":
            path = unquote(parts.path.removeprefix("/"))
            if not path:
                raise ConfigurationError(f"cannot read views URL {url!r}")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.dialect = "sqlite"
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            # Commits skip the fsync (the WAL is synced at checkpoints): a power cut may
            # lose the last batches, but their offsets go with them, so they are read again.
            self._sqlite.execute("PRAGMA synchronous=NORMAL")
            self._sqlite.execute(
                f"PRAGMA busy_timeout={int(params.get('lock_timeout', 30)) * 1000}"
            )
        elif parts.scheme in {"postgresql", "postgres"}:
            self.dialect = "postgres"
            conninfo = parts._replace(query="").geturl()
            schema_name = params.get("schema", "public")
            self._postgres = psycopg.connect(
                conninfo,
                connect_timeout=int(params.get("connect_timeout", 5)),
                options=f"-c search_path={schema_name}",
            )
        else:
            raise ConfigurationError(
                f"unsupported views URL {url!r}: use sqlite:///PATH or postgresql://..."
            )

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed if the block ends normally, rolled back otherwise."""
        if self.dialect == "sqlite":
            connection = self._sqlite
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(connection.cursor(), "sqlite")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        else:
            with self._postgres.transaction(), self._postgres.cursor() as cursor:
                yield Transaction(cursor, "postgres")

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        """A read-only transaction: one consistent snapshot that never blocks the writers."""
        if self.dialect == "sqlite":
            connection = self._sqlite
            connection.execute("BEGIN DEFERRED")  # a WAL reader: takes no write lock
            try:
                yield Transaction(connection.cursor(), "sqlite")
            finally:
                connection.execute("ROLLBACK")
        else:
            with self._postgres.transaction(), self._postgres.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield Transaction(cursor, "postgres")

    def close(self) -> None:
        """Close the connection."""
        if self.dialect == "sqlite":
            self._sqlite.close()
        else:
            self._postgres.close()

    def setup(self) -> Slot:
        """Create what is missing (both slots, the views on the active one); the active slot."""
        with self.transaction() as tx:
            tx.execute(schema.state_table())
            active = tx.value("SELECT active_slot FROM lifecycle_views_state WHERE id = 1")
            if active is None:
                active = "a"
                tx.execute(
                    "INSERT INTO lifecycle_views_state (id, active_slot) VALUES (1, ?)", [active]
                )
            for slot in SLOTS:
                totals_missing = not self._has_table(tx, f"lifecycle_funnel_{slot}")
                for statement in schema.tables(slot, self.dialect):
                    tx.execute(statement)
                if totals_missing:
                    # A slot built before the funnel totals existed: count them once.
                    funnel.rebuild(tx, slot)
            for statement in schema.views(active):
                tx.execute(statement)
        return active  # type: ignore[no-any-return]

    def _has_table(self, tx: Transaction, name: str) -> bool:
        if self.dialect == "sqlite":
            found = tx.value(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]
            )
        else:
            found = tx.value("SELECT to_regclass(?)", [name])
        return found is not None

    def active_slot(self, tx: Transaction) -> Slot:
        """The slot the views read (read inside the caller's transaction)."""
        slot = tx.value("SELECT active_slot FROM lifecycle_views_state WHERE id = 1")
        if slot not in SLOTS:
            raise ConfigurationError("the views are not set up: run lifecycle project once")
        return slot  # type: ignore[no-any-return]

    def offset(self, tx: Transaction, slot: Slot, topic: str, partition: int) -> int | None:
        """The last offset of a partition applied to the slot (None: nothing yet)."""
        position = tx.value(
            f"SELECT position FROM lifecycle_offsets_{slot} WHERE topic = ? AND partition_id = ?",
            [topic, partition],
        )
        return None if position is None else int(position)

    def record_offset(
        self, tx: Transaction, slot: Slot, topic: str, partition: int, offset: int
    ) -> None:
        """Remember the last offset applied, in the transaction that applied it."""
        tx.execute(
            f"INSERT INTO lifecycle_offsets_{slot} (topic, partition_id, position) "
            "VALUES (?, ?, ?) ON CONFLICT (topic, partition_id) "
            "DO UPDATE SET position = excluded.position",
            [topic, partition, offset],
        )

    def clear(self, slot: Slot) -> None:
        """Empty a slot's tables (before a replay builds it again)."""
        with self.transaction() as tx:
            for table in schema.SLOT_TABLES:
                tx.execute(f"DELETE FROM {table}_{slot}")

    def swap(self, slot: Slot, *, rules_version: str) -> None:
        """Point every view at ``slot``, atomically."""
        with self.transaction() as tx:
            for statement in schema.views(slot):
                tx.execute(statement)
            tx.execute(
                "UPDATE lifecycle_views_state SET active_slot = ?, rules_version = ? WHERE id = 1",
                [slot, rules_version],
            )
