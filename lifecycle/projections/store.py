"""The view tables, on SQLite or PostgreSQL, in two slots behind stable SQL views.

Dashboards (Grafana, Metabase, Superset, the API) read the views named ``lifecycle_<view>``.
Each view selects from the tables of the *active* slot (``a`` or ``b``). A replay builds the
other slot from scratch and then swaps the views over in one transaction (blue/green), so a
reader never sees a half-built view.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from lifecycle.adapters import database_url
from lifecycle.errors import ConfigurationError
from lifecycle.projections import funnel, schema
from lifecycle.projections.sql import SLOTS, Slot, Transaction, bind_instants_for_sqlite

# A PostgreSQL advisory lock key: held while the views' tables are created ("view").
SETUP_LOCK = 0x76696577
# The table or index a CREATE ... IF NOT EXISTS statement makes.
_CREATED = re.compile(r"IF NOT EXISTS (\w+)")


class ViewStore:
    """Connects to the views database (by URL) and manages the slots."""

    def __init__(self, url: str) -> None:
        parsed = database_url.parse(url)
        self.url = url
        self.dialect = parsed.dialect
        if parsed.dialect == "sqlite":
            bind_instants_for_sqlite()
            parsed.create_parent()
            path = str(parsed.file or ":memory:")
            self._sqlite = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._sqlite.execute("PRAGMA journal_mode=WAL")
            # Commits skip the fsync (the WAL is synced at checkpoints): a power cut may
            # lose the last batches, but their offsets go with them, so they are read again.
            self._sqlite.execute("PRAGMA synchronous=NORMAL")
            self._sqlite.execute(f"PRAGMA busy_timeout={(parsed.lock_timeout or 30) * 1000}")
            self._sqlite.execute("PRAGMA cache_size=-65536")
            self._sqlite.execute("PRAGMA wal_autocheckpoint=10000")
        else:
            self._conninfo = parsed.conninfo
            self._connect_timeout = parsed.connect_timeout
            self._schema = parsed.schema
            self._postgres = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo,
            connect_timeout=self._connect_timeout,
            options=f"-c search_path={self._schema}",
        )

    def _live_postgres(self) -> psycopg.Connection[Any]:
        """The PostgreSQL connection, made again if the server dropped the last one."""
        if self._postgres.closed:
            self._postgres = self._connect()
        return self._postgres

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction: committed if the block ends normally, rolled back otherwise.

        On PostgreSQL a connection the server dropped (a failover, a terminated backend) is
        replaced by a new one here; the transaction that saw it drop fails, for its caller to
        retry.
        """
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
            postgres = self._live_postgres()
            with postgres.transaction(), postgres.cursor() as cursor:
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
            postgres = self._live_postgres()
            with postgres.transaction(), postgres.cursor() as cursor:
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
            if self.dialect == "postgres":
                # Processes starting together on a new schema would create the same tables at
                # once (a unique violation in pg_type): one at a time, until this commits.
                tx.execute("SELECT pg_advisory_xact_lock(?)", [SETUP_LOCK])
            self._create(tx, schema.state_table())
            self._create(tx, schema.parked_table(self.dialect))
            for statement in schema.announcement_tables(self.dialect):
                self._create(tx, statement)
            active = tx.value("SELECT active_slot FROM lifecycle_views_state WHERE id = 1")
            if active is None:
                active = "a"
                tx.execute(
                    "INSERT INTO lifecycle_views_state (id, active_slot) VALUES (1, ?)", [active]
                )
            for slot in SLOTS:
                totals_missing = not self._has_table(tx, f"lifecycle_funnel_{slot}")
                for statement in schema.tables(slot, self.dialect):
                    self._create(tx, statement)
                self._add_topic_id_column(tx, slot)
                if totals_missing:
                    # A slot built before the funnel totals existed: count them once.
                    funnel.rebuild(tx, slot)
            for statement in schema.views(active):
                tx.execute(statement)
        return active  # type: ignore[no-any-return]

    def _create(self, tx: Transaction, statement: str) -> None:
        """Run a ``CREATE ... IF NOT EXISTS`` statement, unless what it makes is there.

        On PostgreSQL even a statement that finds its table or index there first takes a lock
        on the table, which deadlocked with a views worker writing it (a process starting
        beside a running worker: the API, a second worker).
        """
        named = _CREATED.search(statement) if self.dialect == "postgres" else None
        if named and self._has_table(tx, named[1]):
            return
        tx.execute(statement)

    def _add_topic_id_column(self, tx: Transaction, slot: Slot) -> None:
        """Offsets tables made before topic ids were kept get the column."""
        statement = schema.offsets_topic_id_column(slot, self.dialect)
        if statement is not None:
            has_column = tx.value(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? AND column_name = 'topic_id'",
                [f"lifecycle_offsets_{slot}"],
            )
            if not has_column:
                tx.execute(statement)
            return
        columns = {row[1] for row in tx.rows(f"PRAGMA table_info(lifecycle_offsets_{slot})")}
        if "topic_id" not in columns:
            tx.execute(f"ALTER TABLE lifecycle_offsets_{slot} ADD COLUMN topic_id TEXT")

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

    def record_offset(  # noqa: PLR0913 (each part names the position)
        self,
        tx: Transaction,
        slot: Slot,
        topic: str,
        partition: int,
        offset: int,
        *,
        topic_id: str | None = None,
    ) -> None:
        """Remember the last offset applied, in the transaction that applied it."""
        tx.execute(
            f"INSERT INTO lifecycle_offsets_{slot} (topic, partition_id, position, topic_id) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (topic, partition_id) "
            "DO UPDATE SET position = excluded.position, topic_id = excluded.topic_id",
            [topic, partition, offset, topic_id],
        )

    def offsets_topic_ids(self, tx: Transaction, slot: Slot, topic: str) -> set[str | None]:
        """The topic ids the slot's offsets of ``topic`` were read from (None: not known)."""
        rows = tx.rows(
            f"SELECT DISTINCT topic_id FROM lifecycle_offsets_{slot} WHERE topic = ?", [topic]
        )
        return {row[0] for row in rows}

    def tie_offsets(self, tx: Transaction, slot: Slot, topic: str, topic_id: str) -> int:
        """Say which topic id the slot's offsets of ``topic`` belong to.

        Offsets of another id are of a topic since recreated: they are dropped (the new one is
        read from its start). Offsets of no known id (kept before ids were) are taken to be of
        this one. How many offsets were dropped.
        """
        stale = int(
            tx.value(
                f"SELECT COUNT(*) FROM lifecycle_offsets_{slot} "
                "WHERE topic = ? AND topic_id IS NOT NULL AND topic_id <> ?",
                [topic, topic_id],
            )
        )
        if stale:
            tx.execute(f"DELETE FROM lifecycle_offsets_{slot} WHERE topic = ?", [topic])
        tx.execute(
            f"UPDATE lifecycle_offsets_{slot} SET topic_id = ? "
            "WHERE topic = ? AND topic_id IS NULL",
            [topic_id, topic],
        )
        return stale

    def park(  # noqa: PLR0913 (where the event came from, and why it is parked)
        self,
        tx: Transaction,
        *,
        topic: str,
        partition: int,
        offset: int,
        error: str,
        value: bytes | None,
    ) -> None:
        """Keep a lead event the views could not apply (once per offset)."""
        tx.execute(
            "INSERT INTO lifecycle_parked_events "
            "(topic, partition_id, position, parked_at, error, value) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (topic, partition_id, position) DO NOTHING",
            [topic, partition, offset, datetime.now(UTC), error, value],
        )

    def parked(self, tx: Transaction, *, limit: int = 100) -> list[tuple[Any, ...]]:
        """Parked lead events, newest first: topic, partition, offset, parked_at, error, value."""
        return tx.rows(
            "SELECT topic, partition_id, position, parked_at, error, value "
            "FROM lifecycle_parked_events ORDER BY parked_at DESC LIMIT ?",
            [limit],
        )

    def parked_count(self, tx: Transaction) -> int:
        """How many lead events are parked."""
        return int(tx.value("SELECT COUNT(*) FROM lifecycle_parked_events"))

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
