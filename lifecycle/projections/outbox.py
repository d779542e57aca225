"""The announced changes, kept in the views database until the publisher has sent them.

Changes are numbered in commit order: a writer takes ``lifecycle_changes_sequence`` in its
transaction, so a second writer waits for the first to commit before it numbers its own, and
the publisher, reading in number order, never passes a change that commits later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from lifecycle.contracts import changes as contract
from lifecycle.contracts.changes import Change
from lifecycle.projections.schema import instant
from lifecycle.projections.sql import Transaction


@dataclass(frozen=True)
class Stored:
    """A change as the outbox holds it."""

    seq: int
    id: str
    type: str
    lead_id: str
    at: datetime
    data: bytes


def append(tx: Transaction, changes: Sequence[tuple[str, Change]]) -> None:
    """Add (``ce_id``, change) pairs after the last change."""
    if not changes:
        return
    tx.execute(
        "INSERT INTO lifecycle_changes_sequence (id, last_seq) VALUES (1, 0) "
        "ON CONFLICT (id) DO NOTHING"
    )
    tx.execute(
        "UPDATE lifecycle_changes_sequence SET last_seq = last_seq + ? WHERE id = 1",
        [len(changes)],
    )
    last = int(tx.value("SELECT last_seq FROM lifecycle_changes_sequence WHERE id = 1"))
    first = last - len(changes) + 1
    tx.executemany(
        "INSERT INTO lifecycle_changes (seq, id, type, lead_id, at, observed_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                first + n,
                change_id,
                type(change).__name__,
                str(change.lead_id),
                change.at,
                change.observed_at,
                contract.encode(change).decode(),
            )
            for n, (change_id, change) in enumerate(changes)
        ],
    )


def after(tx: Transaction, seq: int, limit: int, *, kind: str | None = None) -> list[Stored]:
    """The changes numbered after ``seq`` (of one type, if ``kind``), oldest first."""
    return _select(tx, "seq > ?", [seq], kind=kind, order="seq", limit=limit)


def latest(tx: Transaction, limit: int, *, kind: str | None = None) -> list[Stored]:
    """The newest ``limit`` changes (of one type, if ``kind``), newest first."""
    return _select(tx, "1 = 1", [], kind=kind, order="seq DESC", limit=limit)


def _select(  # noqa: PLR0913 (one query's parts)
    tx: Transaction, where: str, params: list[object], *, kind: str | None, order: str, limit: int
) -> list[Stored]:
    if kind is not None:
        where, params = f"{where} AND type = ?", [*params, kind]
    return [
        Stored(int(n), change_id, name, lead_id, instant(at), data.encode())  # type: ignore[arg-type]
        for n, change_id, name, lead_id, at, data in tx.rows(
            "SELECT seq, id, type, lead_id, at, data FROM lifecycle_changes "
            f"WHERE {where} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
    ]


def published(tx: Transaction) -> tuple[int, str | None]:
    """The last change the broker acknowledged, and the id of the topic it went to."""
    row = tx.rows("SELECT seq, topic_id FROM lifecycle_changes_published WHERE id = 1")
    return (int(row[0][0]), row[0][1]) if row else (0, None)


def record_published(tx: Transaction, seq: int, topic_id: str | None) -> None:
    """The broker acknowledged every change up to ``seq``, on the topic of this id."""
    tx.execute(
        "INSERT INTO lifecycle_changes_published (id, seq, topic_id) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, topic_id = excluded.topic_id",
        [seq, topic_id],
    )
