"""Storage wiring: the msgspec mapper for stored events and database URLs.

The mapper stores each event's attributes as compact JSON and reads them back with their
declared types (facts, datetimes, UUIDs). Reading goes through plain dicts first, so that
``class_version`` upcasters still see and change the old shape before it is typed.
"""

from __future__ import annotations

import dataclasses
import functools
import sqlite3
import time
import typing
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import MISSING
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    AggregateRecorder,
    InfrastructureFactory,
    IntegrityError,
    Mapper,
    OperationalError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    Transcoder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresDatastore,
    PostgresProcessRecorder,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteCursor, SQLiteProcessRecorder
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.sql import SQL, Identifier

from lifecycle.adapters import sealing
from lifecycle.adapters.database_url import parse as database_url_parse
from lifecycle.adapters.keyring import Keyring
from lifecycle.errors import ConfigurationError

# A PostgreSQL advisory lock key: held while an application creates its tables.
SCHEMA_LOCK = 0x6C656164  # "lead"

_ENVELOPE = frozenset({"originator_id", "originator_version"})
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


class MsgspecTranscoder(Transcoder):
    """JSON by msgspec; used for anything the mapper does not type itself."""

    def encode(self, obj: object) -> bytes:
        """Encode builtins, Structs, datetimes and UUIDs as JSON."""
        return _ENCODER.encode(obj)

    def decode(self, data: bytes) -> Any:  # noqa: ANN401 (the Transcoder interface)
        """Decode JSON into builtins."""
        return _DECODER.decode(data)


@cache
def _state_type(event_class: type) -> type[msgspec.Struct]:
    """A Struct with the event's own fields (not the envelope), to type stored state.

    It also reads ``class_version`` (1 when absent), so that old versions are noticed.
    """
    hints = typing.get_type_hints(event_class)
    defaults = {f.name: _default(f) for f in dataclasses.fields(event_class)}
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        (name, hint) if defaults.get(name, MISSING) is MISSING else (name, hint, defaults[name])
        for name, hint in hints.items()
        if name not in _ENVELOPE and typing.get_origin(hint) is not typing.ClassVar
    ]
    fields.append(("class_version", int, 1))
    return msgspec.defstruct(f"{event_class.__qualname__}State", fields, kw_only=True)


def _default(field: dataclasses.Field[Any]) -> Any:  # noqa: ANN401 (any field's default)
    """A dataclass field's default as msgspec takes it (MISSING when it has none)."""
    if field.default_factory is not MISSING:
        return msgspec.field(default_factory=field.default_factory)
    return field.default


@cache
def _state_decoder(event_class: type) -> msgspec.json.Decoder[msgspec.Struct]:
    """Decodes the stored state of the event class's current version straight into its type."""
    return msgspec.json.Decoder(_state_type(event_class), strict=False)


@cache
def _stored_as(event_class: type) -> tuple[str, int]:
    """The topic and class version an event class is stored under."""
    return get_topic(event_class), getattr(event_class, "class_version", 1)


class MsgspecMapper(Mapper[UUID]):
    """Maps domain events to stored events with msgspec, keeping upcasting working.

    With a keyring (``seal_with``), the personal fields are sealed with the lead's key on
    the way in and opened on the way out (``lifecycle/adapters/sealing.py`` names them).
    """

    keyring: Keyring | None = None
    clear_properties: frozenset[str] = sealing.RULES_PROPERTIES

    def seal_with(self, keyring: Keyring, published_properties: Collection[str]) -> None:
        """Seal personal fields with this keyring; these touchpoint properties stay clear."""
        self.keyring = keyring
        self.clear_properties = sealing.RULES_PROPERTIES | frozenset(published_properties)

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """Encode the event's attributes (less id and version) as JSON."""
        topic, class_version = _stored_as(type(domain_event))
        state = vars(domain_event).copy()
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if self.keyring is not None and topic in sealing.PERSONAL_TOPICS:
            seal = functools.partial(self.keyring.seal, originator_id)
            state = sealing.transform_state(topic, state, seal, self.clear_properties, sealing=True)
        if class_version > 1:
            state["class_version"] = class_version
        stored_state = _ENCODER.encode(state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id, originator_version, topic, stored_state)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """Decode (upcasting old versions first) and type the attributes as the event declares.

        The current version is decoded straight into its type; an older one is decoded into
        plain dicts first, so that the ``upcast_vN_vN+1`` methods see and change its shape.
        """
        cls = resolve_topic(stored_event.topic)
        stored_state = stored_event.state
        if self.cipher:
            stored_state = self.cipher.decrypt(stored_state)
        if self.compressor:
            stored_state = self.compressor.decompress(stored_state)
        try:
            typed = _state_decoder(cls).decode(stored_state)
        except msgspec.ValidationError:
            typed = None  # an older shape, perhaps: the upcasters may fix it
        if typed is None or typed.class_version < _stored_as(cls)[1]:  # type: ignore[attr-defined]
            typed = _upcast(cls, stored_state)
        state = msgspec.structs.asdict(typed)
        del state["class_version"]
        originator_id = stored_event.originator_id
        if not isinstance(originator_id, UUID):
            originator_id = UUID(str(originator_id))
        if self.keyring is not None and stored_event.topic == sealing.ERASED_TOPIC:
            self.keyring.erased([originator_id])  # (forgotten by another process, maybe)
        if self.keyring is not None and stored_event.topic in sealing.PERSONAL_TOPICS:
            unseal = functools.partial(self.keyring.open, originator_id)
            state = sealing.transform_state(
                stored_event.topic, state, unseal, self.clear_properties, sealing=False
            )
        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return typing.cast("DomainEventProtocol[UUID]", domain_event)


def _upcast(cls: type, stored_state: bytes) -> msgspec.Struct:
    """Decode an old version's state into dicts, upcast it step by step, then type it."""
    raw: dict[str, Any] = _DECODER.decode(stored_state)
    version = raw.pop("class_version", 1)
    while version < _stored_as(cls)[1]:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(raw)
        version += 1
    return msgspec.convert(raw, _state_type(cls), strict=False)


KEYS_TABLE = "lifecycle_keys"
# What the store was made with, that it must be opened with again (how identity ids are made).
SETTINGS_TABLE = "lifecycle_store_settings"


class KeyedRecorder(ProcessRecorder):
    """What both recorders add: the leads' keys, written and deleted with the events.

    ``insert_events`` passes the batch's new keys and the keys to destroy to the library's
    ``_insert_events``, which runs inside the events' transaction; once that committed, the
    keyring hears of it. (Put before the library's recorder among the bases.)
    """

    keyring: Keyring | None = None

    @abstractmethod
    def read_keys(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        """The wrapped keys of these leads that the store has."""

    @abstractmethod
    def has_keys(self) -> bool:
        """Whether any personal data was sealed in this store."""

    @abstractmethod
    def compact_keys(self) -> None:
        """Rewrite what still holds deleted keys (after an erasure)."""

    @abstractmethod
    def store_setting(self, name: str, default: str) -> str:
        """A setting the store was made with (``default`` is recorded if it has none yet)."""

    @abstractmethod
    def has_events(self) -> bool:
        """Whether anything was recorded in this store."""

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,  # noqa: ANN401 (the library's signature)
    ) -> Sequence[int] | None:
        """Insert the events, with the keys they need and the ones erased, in one transaction."""
        keyring = self.keyring
        # (super() is the library's recorder, after this class among the bases.)
        if keyring is None:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[safe-super]
        ids = {_uuid(s.originator_id) for s in stored_events}
        new_keys = keyring.unwritten(ids)
        erasing = keyring.erasing() & ids  # this erasure's (each erased lead gets an event)
        result = super().insert_events(  # type: ignore[safe-super]
            stored_events, new_keys=new_keys, erasing=erasing, **kwargs
        )
        keyring.written(new_keys)
        keyring.erased(erasing)
        return result


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(originator_id)


class SQLiteBatchRecorder(KeyedRecorder, SQLiteProcessRecorder):
    """The library's SQLite process recorder, inserting a batch's events in one statement.

    The library inserts them one by one to return their notification ids, which nothing here
    reads; one ``executemany`` costs a third as much. The leads' keys live beside the events;
    deleting one overwrites it on disk (``secure_delete``).
    """

    def construct_create_table_statements(self) -> list[str]:
        """The library's tables, and the keys'."""
        return [
            *super().construct_create_table_statements(),
            (
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} "
                "(lead_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {SETTINGS_TABLE} "
                "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            ),
        ]

    def read_keys(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        """The wrapped keys of these leads that the store has."""
        found: dict[UUID, bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(lead_ids), _IDS_PER_SELECT):
                chunk = lead_ids[start : start + _IDS_PER_SELECT]
                c.execute(
                    f"SELECT lead_id, wrapped FROM {KEYS_TABLE} "  # noqa: S608 (only ?s)
                    f"WHERE lead_id IN ({','.join('?' * len(chunk))})",
                    [i.hex for i in chunk],
                )
                found.update((UUID(key), bytes(wrapped)) for key, wrapped in c.fetchall())
        return found

    def has_keys(self) -> bool:
        """Whether any personal data was sealed in this store."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT 1 FROM {KEYS_TABLE} LIMIT 1")  # noqa: S608 (a constant)
            return c.fetchone() is not None

    def store_setting(self, name: str, default: str) -> str:
        """A setting the store was made with (``default`` is recorded if it has none yet)."""
        select = f"SELECT value FROM {SETTINGS_TABLE} WHERE name = ?"  # noqa: S608
        with self.datastore.transaction(commit=False) as c:
            c.execute(select, [name])
            found = c.fetchone()
        if found is not None:
            return str(found[0])  # (every start but the first: no write)
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {SETTINGS_TABLE} (name, value) VALUES (?, ?) "  # noqa: S608
                "ON CONFLICT (name) DO NOTHING",
                [name, default],
            )
            c.execute(select, [name])
            return str(c.fetchone()[0])

    def has_events(self) -> bool:
        """Whether anything was recorded in this store."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT 1 FROM {self.events_table_name} LIMIT 1")  # noqa: S608
            return c.fetchone() is not None

    def compact_keys(self) -> None:
        """Move the write-ahead log into the file and empty it: the old pages held the keys.

        (``secure_delete`` zeroed the deleted keys in the pages; the log kept older copies.)
        """
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,  # noqa: ANN401 (the library's signature)
    ) -> Sequence[int] | None:
        new_keys: dict[UUID, bytes] = kwargs.get("new_keys") or {}
        if new_keys:
            c.executemany(
                f"INSERT INTO {KEYS_TABLE} (lead_id, wrapped) VALUES (?, ?)",  # noqa: S608
                [(lead_id.hex, wrapped) for lead_id, wrapped in new_keys.items()],
            )
        erasing: set[UUID] = kwargs.get("erasing") or set()
        if erasing:
            c.execute("PRAGMA secure_delete = ON")  # (no event is ever deleted: keys only)
            c.executemany(
                f"DELETE FROM {KEYS_TABLE} WHERE lead_id = ?",  # noqa: S608 (a constant)
                [(lead_id.hex,) for lead_id in erasing],
            )
        c.executemany(
            self.insert_events_statement,
            [
                (
                    s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                    s.originator_version,
                    s.topic,
                    s.state,
                )
                for s in stored_events
            ],
        )
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is not None:
            self._insert_tracking(c, tracking)
        return None


class PostgresKeyedRecorder(KeyedRecorder, PostgresProcessRecorder):
    """The library's PostgreSQL process recorder, with the leads' keys beside the events.

    A deleted key stays in the table's file until a VACUUM reclaims it (``lifecycle forget``
    runs one on the keys table).
    """

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(datastore, **kwargs)
        self.keys_table = SQL("{schema}.{table}").format(
            schema=Identifier(datastore.schema), table=Identifier(KEYS_TABLE)
        )
        self.settings_table = SQL("{schema}.{table}").format(
            schema=Identifier(datastore.schema), table=Identifier(SETTINGS_TABLE)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {keys} "
                "(lead_id uuid PRIMARY KEY, wrapped bytea NOT NULL)"
            ).format(keys=self.keys_table)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {settings} (name text PRIMARY KEY, value text NOT NULL)"
            ).format(settings=self.settings_table)
        )

    def store_setting(self, name: str, default: str) -> str:
        """A setting the store was made with (``default`` is recorded if it has none yet)."""
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(
                SQL(
                    "INSERT INTO {settings} (name, value) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO NOTHING"
                ).format(settings=self.settings_table),
                [name, default],
            )
            cursor.execute(
                SQL("SELECT value FROM {settings} WHERE name = %s").format(
                    settings=self.settings_table
                ),
                [name],
            )
            row = cursor.fetchone()
            connection.commit()
            return str(row["value"]) if row else default

    def has_events(self) -> bool:
        """Whether anything was recorded in this store."""
        query = SQL("SELECT 1 AS one FROM {schema}.{table} LIMIT 1").format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name)
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone() is not None

    def read_keys(self, lead_ids: list[UUID]) -> dict[UUID, bytes]:
        """The wrapped keys of these leads that the store has."""
        query = SQL("SELECT lead_id, wrapped FROM {keys} WHERE lead_id = ANY(%s)").format(
            keys=self.keys_table
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query, [lead_ids])
            return {row["lead_id"]: bytes(row["wrapped"]) for row in cursor.fetchall()}

    def has_keys(self) -> bool:
        """Whether any personal data was sealed in this store."""
        query = SQL("SELECT 1 AS one FROM {keys} LIMIT 1").format(keys=self.keys_table)
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchone() is not None

    def compact_keys(self) -> None:
        """Reclaim the space of deleted keys (outside a transaction, as VACUUM must be)."""
        with self.datastore.get_connection() as connection:
            connection.autocommit = True
            try:
                # FULL: the table is rewritten, so the deleted keys' bytes leave its file.
                connection.execute(SQL("VACUUM FULL {keys}").format(keys=self.keys_table))
            finally:
                connection.autocommit = False

    def _insert_events(
        self,
        curs: Any,  # noqa: ANN401 (the library's cursor)
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,  # noqa: ANN401 (the library's signature)
    ) -> None:
        new_keys: dict[UUID, bytes] = kwargs.get("new_keys") or {}
        if new_keys:
            curs.executemany(
                SQL("INSERT INTO {keys} (lead_id, wrapped) VALUES (%s, %s)").format(
                    keys=self.keys_table
                ),
                list(new_keys.items()),
            )
        erasing: set[UUID] = kwargs.get("erasing") or set()
        if erasing:
            curs.execute(
                SQL("DELETE FROM {keys} WHERE lead_id = ANY(%s)").format(keys=self.keys_table),
                [list(erasing)],
            )
        super()._insert_events(curs, stored_events, **kwargs)


def process_recorder(factory: InfrastructureFactory[Any]) -> ProcessRecorder:
    """The factory's process recorder (only it writes tracking records with the events).

    Processes starting together on PostgreSQL would replace the same functions at once ("tuple
    concurrently updated"): one at a time creates what is missing. On a new SQLite file they
    meet twice (eventsourcing 9.5.6): switching the file to WAL answers "database is locked"
    at once, without waiting, to all but one; and each may find no tracking table and record
    its migration, which all but the first fail to do. Both pass when tried again.
    """
    datastore = getattr(factory, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        for _ in range(NEW_SQLITE_ATTEMPTS - 1):
            try:
                return factory.process_recorder()
            except (IntegrityError, OperationalError, sqlite3.OperationalError):
                time.sleep(0.05)
        return factory.process_recorder()
    with datastore.get_connection() as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK])
        try:
            return factory.process_recorder()
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK])


# Tries at opening a new SQLite store that other processes open too (0.05 s apart).
NEW_SQLITE_ATTEMPTS = 40

# SQLite allows 32,766 parameters per statement; a batch's ids fit many times over.
_IDS_PER_SELECT = 1000


def select_histories(
    recorder: AggregateRecorder, originator_ids: Collection[UUID]
) -> dict[UUID, list[StoredEvent]]:
    """The stored events of many aggregates in one query each 1,000 (ids with none left out).

    The library reads one aggregate per query (and, on SQLite, per transaction); a batch
    of touchpoints names hundreds of aggregates, so its reads are gathered here.
    """
    histories: dict[UUID, list[StoredEvent]] = defaultdict(list)
    ids = list(originator_ids)
    for start in range(0, len(ids), _IDS_PER_SELECT):
        chunk = ids[start : start + _IDS_PER_SELECT]
        # Rows name their aggregate by a key of their own; the UUIDs asked for are reused
        # (parsing one per row cost as much as the query).
        asked = {_key(recorder, i): i for i in chunk}
        for key, version, topic, state in _select(recorder, list(asked)):
            originator_id = asked[key]
            histories[originator_id].append(StoredEvent(originator_id, version, topic, state))
    keyring: Keyring | None = getattr(recorder, "keyring", None)
    if keyring is not None:
        # The keys of the leads among them in one query too, before their events are opened.
        keyring.load(
            i for i, h in histories.items() if any(s.topic in sealing.PERSONAL_TOPICS for s in h)
        )
    return histories


def _key(recorder: AggregateRecorder, originator_id: UUID) -> object:
    return originator_id.hex if isinstance(recorder, SQLiteAggregateRecorder) else originator_id


def _select(recorder: AggregateRecorder, keys: list[Any]) -> list[tuple[Any, int, str, bytes]]:
    """(originator key, version, topic, state) rows of the aggregates, in version order."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        return _event_rows(recorder, f"originator_id IN ({','.join('?' * len(keys))})", keys)
    return _event_rows(recorder, "originator_id = ANY(%s)", [keys])


def _event_rows(
    recorder: AggregateRecorder, where: str, params: list[Any], *, limit: int | None = None
) -> list[tuple[Any, int, str, bytes]]:
    """(originator key, version, topic, state) rows matching ``where``, in primary-key order.

    ``where`` is our own SQL with the placeholders of the recorder's database (never data).
    """
    values = [*params, limit] if limit else params
    if isinstance(recorder, SQLiteAggregateRecorder):
        statement = (
            "SELECT originator_id, originator_version, topic, state "  # noqa: S608 (only ?s)
            f"FROM {recorder.events_table_name} WHERE {where} "
            "ORDER BY originator_id, originator_version" + (" LIMIT ?" if limit else "")
        )
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, values)
            rows: list[tuple[Any, int, str, bytes]] = cursor.fetchall()
            return rows
    if isinstance(recorder, PostgresAggregateRecorder):
        query = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE {where} ORDER BY originator_id, originator_version{limit}"
        ).format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
            where=SQL(where),  # our own SQL (see above)
            limit=SQL(" LIMIT %s" if limit else ""),
        )
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query, values)
            return [
                (row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]
    raise _unsupported(recorder)


def scan_histories(
    recorder: AggregateRecorder, topics: Sequence[str], *, page: int = 5_000
) -> Iterator[list[StoredEvent]]:
    """The stored events of these topics, aggregate by aggregate (each in version order).

    Read in pages of short read transactions, in the order of the events table's primary key,
    so a scan of millions of events holds one aggregate and one page in memory at a time.
    """
    after: tuple[Any, int] | None = None
    history: list[StoredEvent] = []
    current: Any = None
    while True:
        rows = _scan(recorder, topics, after, page)
        for key, version, topic, state in rows:
            if key != current:
                if history:
                    yield history
                current, history = key, []
                originator_id = key if isinstance(key, UUID) else UUID(key)
            history.append(StoredEvent(originator_id, version, topic, state))
        if len(rows) < page:
            break
        after = rows[-1][0], rows[-1][1]
    if history:
        yield history


def count_events(recorder: AggregateRecorder, topics: Sequence[str]) -> int:
    """How many stored events have these topics."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        marks = ",".join("?" * len(topics))
        statement = f"SELECT COUNT(*) FROM {recorder.events_table_name} WHERE topic IN ({marks})"  # noqa: S608 (only ?s)
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, list(topics))
            return int(cursor.fetchone()[0])
    if isinstance(recorder, PostgresAggregateRecorder):
        query = SQL("SELECT COUNT(*) AS n FROM {schema}.{table} WHERE topic = ANY(%s)").format(
            schema=Identifier(recorder.datastore.schema),
            table=Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(query, [list(topics)])
            row = cursor.fetchone()
            return int(row["n"]) if row else 0
    raise _unsupported(recorder)


def _scan(
    recorder: AggregateRecorder, topics: Sequence[str], after: tuple[Any, int] | None, page: int
) -> list[tuple[Any, int, str, bytes]]:
    """One page of (originator key, version, topic, state) rows after a (key, version)."""
    if isinstance(recorder, SQLiteAggregateRecorder):
        marks = ",".join("?" * len(topics))
        where = f"(originator_id, originator_version) > (?, ?) AND topic IN ({marks})"
        return _event_rows(recorder, where, [*(after or ("", 0)), *topics], limit=page)
    where = "(originator_id, originator_version) > (%s, %s) AND " if after else ""
    return _event_rows(
        recorder, f"{where}topic = ANY(%s)", [*(after or ()), list(topics)], limit=page
    )


def _unsupported(recorder: AggregateRecorder) -> ConfigurationError:
    return ConfigurationError(
        f"no batch reads for {type(recorder).__name__}: use SQLite or PostgreSQL"
    )


def eventsourcing_env(database_url: str) -> dict[str, str]:
    """Translate ``LIFECYCLE_DATABASE_URL`` into the eventsourcing library's settings.

    ``lock_timeout`` (seconds) bounds how long a write waits for another writer's lock before
    it fails and is retried; PostgreSQL also takes ``schema`` and ``connect_timeout``.
    """
    url = database_url_parse(database_url)
    common = {
        "MAPPER_TOPIC": get_topic(MsgspecMapper),
        "TRANSCODER_TOPIC": get_topic(MsgspecTranscoder),
    }
    if url.dialect == "sqlite":
        url.create_parent()
        return {
            **common,
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "PROCESS_RECORDER_TOPIC": get_topic(SQLiteBatchRecorder),
            "SQLITE_DBNAME": str(url.file or ":memory:"),
            "SQLITE_LOCK_TIMEOUT": str(url.lock_timeout),
        }
    env = {
        **common,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "PROCESS_RECORDER_TOPIC": get_topic(PostgresKeyedRecorder),
        "POSTGRES_DBNAME": url.dbname,
        "POSTGRES_HOST": url.host,
        "POSTGRES_PORT": str(url.port),
        "POSTGRES_USER": url.user,
        "POSTGRES_PASSWORD": url.password,
        "POSTGRES_SCHEMA": url.schema,
        "POSTGRES_CONNECT_TIMEOUT": str(url.connect_timeout),
        # A connection the server dropped (a failover, a terminated backend) is found out
        # when it is taken from the pool, not by the transaction that meets it: after an
        # outage every idle connection in the pool is dead, and without this each retry
        # of a batch would spend one of them (minutes, with backoff, for a pool of five).
        "POSTGRES_PRE_PING": "y",
    }
    if url.lock_timeout is not None:
        env["POSTGRES_LOCK_TIMEOUT"] = str(url.lock_timeout)
    return env
