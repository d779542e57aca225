"""What the engine tells the world: each lead's stage, temperature and overdue hand-off, as changes.

State, not history, is announced. ``lifecycle_announced`` keeps, per lead, what was last
announced; after the views worker wrote a batch's lead rows, the announcer reads those rows
again, works out the lead's state now (from the row alone: the stage, ``hot_until`` and
``warm_until``, the sales-ready instant and the first sales touch), and writes the difference
to the outbox ``lifecycle_changes`` in the same transaction. A recomputation that gives the
same answer writes nothing; a fact that arrives late announces the change it makes now, with
the move's own instant as ``at``.

Time-driven changes (cooling, an overdue hand-off) are due at an instant the row already
names: ``due_at`` keeps the next one, and ``tick`` announces the leads whose instant has come.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal
from uuid import UUID

import msgspec

from lifecycle.adapters.metrics import ANNOUNCEMENT_DELAY, CHANGES, TIME_DRIVEN_DELAY
from lifecycle.contracts import changes as contract
from lifecycle.contracts.changes import (
    Change,
    Erased,
    HandoffOverdue,
    HandoffOverdueWithdrawn,
    Merged,
    StageChanged,
    TemperatureChanged,
)
from lifecycle.domain.facts import Disqualification, Fact, Qualification
from lifecycle.domain.vocabulary import Stage, Temperature
from lifecycle.projections import outbox
from lifecycle.projections.schema import instant
from lifecycle.projections.sql import Slot, Transaction

if TYPE_CHECKING:
    from lifecycle.projections.store import ViewStore

SALES_READY = {Stage.SQL.value, Stage.PQL.value, Stage.SERVICE_QUALIFIED.value}
# Leads read per query: well under SQLite's parameter limit.
LEADS_PER_QUERY = 500
_FACT = msgspec.json.Decoder(Fact)
_COOLER = {Temperature.HOT: 2, Temperature.WARM: 1, Temperature.COLD: 0}

Cause = Literal["fact", "time", "rules"]

# A PostgreSQL advisory lock key ("anno"), held by a transaction that announces until it ends:
# two views workers (a tick of one and a batch of the other, or both ticks) would otherwise
# compare with the same last-announced state and announce one change twice. SQLite serializes
# writers anyway.
ANNOUNCE_LOCK = 0x616E6E6F


@dataclass(frozen=True, kw_only=True)
class _Row:
    """A lead row as the announcer reads it."""

    lead_id: str
    stage: str
    hot_until: datetime | None
    warm_until: datetime | None
    first_fact_at: datetime | None
    last_fact_at: datetime | None
    sales_ready_at: datetime | None
    sales_touch_at: datetime | None
    rules_version: str


@dataclass(frozen=True)
class _State:
    """What is (or was last) announced of a lead."""

    stage: str
    temperature: str
    overdue_for: datetime | None
    due_at: datetime | None


@dataclass(frozen=True)
class _Pass:
    """One announcing pass: its instant, why it runs, and what moved each lead into its stage."""

    now: datetime
    cause: Cause
    moves: dict[str, tuple[str, str, datetime]]


@dataclass(frozen=True)
class Announcement:
    """One change, ready for the outbox."""

    change: Change
    rules_version: str

    @property
    def id(self) -> str:
        """Its ``ce_id``."""
        return contract.change_id(self.change, self.rules_version)

    @property
    def summary(self) -> str:
        """Its type and transition: ``StageChanged mql->lead``, ``HandoffOverdue sql``."""
        change = self.change
        name = type(change).__name__
        match change:
            case StageChanged() | TemperatureChanged():
                was = change.from_.value if change.from_ else "new"
                return f"{name} {was}->{change.to.value}"
            case HandoffOverdue() | HandoffOverdueWithdrawn():
                return f"{name} {change.stage.value}"
            case Merged() | Erased():
                return name


class Announcer:
    """Turns lead rows into changes against what was announced, in the caller's transaction."""

    def __init__(
        self, *, sla_hours: int, clock: Callable[[], datetime], quiet: bool = False
    ) -> None:
        """Announce with this clock and hand-off time.

        ``quiet``: record each state as announced without announcing it (for a rebuild that
        should change nothing downstream).
        """
        self.quiet = quiet
        self.sla = timedelta(hours=sla_hours)
        self.sla_hours = sla_hours
        self.clock = clock

    def announce(  # noqa: PLR0913 (what one batch changed, by kind)
        self,
        tx: Transaction,
        slot: Slot,
        lead_ids: Iterable[str],
        *,
        merges: Mapping[str, tuple[str, datetime]] | None = None,
        erased: Mapping[str, datetime] | None = None,
        cause: Cause = "fact",
    ) -> list[Announcement]:
        """Announce what changed for these leads, their merges, and who was forgotten.

        ``merges``: lead -> (survivor, instant); ``erased``: lead -> instant (announced for
        the leads announced before).

        A merge is announced for the merged leads that were announced before (downstream
        knows no others), once, when its survivor is announced: now, or when the survivor's
        own events come (on another partition, they may come after the merge).
        """
        _lock(tx)
        merges = merges or {}
        known = _read_announced(tx, sorted(merges)) if merges else {}
        tx.executemany(
            "DELETE FROM lifecycle_announced WHERE lead_id = ?", [(key,) for key in known]
        )
        tx.executemany(
            "INSERT INTO lifecycle_pending_merges (lead_id, merged_into, at) VALUES (?, ?, ?) "
            "ON CONFLICT (lead_id) DO UPDATE SET merged_into = excluded.merged_into, "
            "at = excluded.at",
            [(lead, *merges[lead]) for lead in sorted(known)],
        )
        survivors = {merges[lead][0] for lead in known}
        found, states, told = self._compare(tx, slot, set(lead_ids) | survivors, cause)
        _write_announced(tx, states)
        tx.executemany(
            "DELETE FROM lifecycle_pending_merges WHERE lead_id = ?", [(lead,) for lead in told]
        )
        found.extend(self._erased(tx, erased or {}))
        if found and not self.quiet:
            outbox.append(tx, [(a.id, a.change) for a in found])
        return found

    def _erased(self, tx: Transaction, erased: Mapping[str, datetime]) -> list[Announcement]:
        known = _read_announced(tx, sorted(erased)) if erased else {}
        now = self.clock()
        return [
            Announcement(Erased(lead_id=UUID(key), at=erased[key], observed_at=now), "")
            for key in sorted(known)
        ]

    def preview(self, tx: Transaction, slot: Slot, lead_ids: Iterable[str]) -> list[Announcement]:
        """What announcing the leads of ``slot`` under its rules would announce; nothing written.

        For what-if: ``slot`` holds the shadow views, compared with what was announced.
        """
        found, _, _ = self._compare(tx, slot, lead_ids, "rules", merging=False)
        return found

    def _compare(
        self,
        tx: Transaction,
        slot: Slot,
        lead_ids: Iterable[str],
        cause: Cause,
        *,
        merging: bool = True,
    ) -> tuple[list[Announcement], dict[str, _State], list[str]]:
        """The changes against what was announced, the states to remember, the merges told."""
        now = self.clock()
        found: list[Announcement] = []
        states: dict[str, _State] = {}
        told: list[str] = []
        keys = sorted(set(lead_ids))
        for start in range(0, len(keys), LEADS_PER_QUERY):
            chunk = keys[start : start + LEADS_PER_QUERY]
            rows = _read_rows(tx, slot, chunk)
            before = _read_announced(tx, chunk)
            pending = _read_pending(tx, sorted(rows)) if merging and rows else {}
            this = _Pass(now, cause, _causes(tx, slot, rows.values()))
            for key in chunk:
                row = rows.get(key)
                if row is None:
                    continue  # merged away, a mere visitor, or not in this slot
                after = self._state(row, now)
                changes = self._changes(row, before.get(key), after, this)
                if key in pending:
                    merged_ids = sorted(lead for lead, _ in pending[key])
                    merged = Merged(
                        lead_id=UUID(key),
                        merged_lead_ids=[UUID(lead) for lead in merged_ids],
                        at=max(at for _, at in pending[key]),
                        observed_at=now,
                    )
                    changes.insert(0, merged)
                    told.extend(merged_ids)
                if after != before.get(key):
                    states[key] = after
                found.extend(Announcement(c, row.rules_version) for c in changes)
        return found, states, told

    def quietly(self) -> Announcer:
        """This announcer, recording states without announcing them."""
        return Announcer(sla_hours=self.sla_hours, clock=self.clock, quiet=True)

    def everyone(self, store: ViewStore, *, cause: Cause = "rules") -> int:
        """Announce every lead of the live views, a page per transaction; how many changes.

        After a replay under new rules is swapped in: the differences, once.
        """
        with store.reading() as tx:
            slot = store.active_slot(tx)
            keys = [key for (key,) in tx.rows(f"SELECT lead_id FROM lifecycle_leads_{slot}")]
        total = 0
        for start in range(0, len(keys), LEADS_PER_QUERY):
            with store.transaction() as tx:
                total += len(
                    self.announce(tx, slot, keys[start : start + LEADS_PER_QUERY], cause=cause)
                )
        return total

    def seed(self, store: ViewStore) -> int:
        """Record every lead's state as announced, if the views hold leads none was announced of.

        Views built before announcing (or with it off) would otherwise announce each lead as
        new when it is next touched, and never cool the others: downstream hears of changes
        from now on instead, not of every existing lead at once. How many changes were
        recorded without a word.
        """
        with store.reading() as tx:
            if has_announced(tx):
                return 0
        return self.quietly().everyone(store)

    def tick(self, tx: Transaction, slot: Slot) -> list[Announcement]:
        """Announce the leads whose time-driven change has come (cooling, overdue hand-off)."""
        _lock(tx)
        due = [
            str(lead_id)
            for (lead_id,) in tx.rows(
                "SELECT lead_id FROM lifecycle_announced WHERE due_at <= ? ORDER BY due_at",
                [self.clock()],
            )
        ]
        return self.announce(tx, slot, due, cause="time") if due else []

    def _state(self, row: _Row, now: datetime) -> _State:
        temperature = _temperature(row, now)
        overdue_for = None
        due: list[datetime] = [
            t
            for t in (row.hot_until, row.warm_until)
            if t is not None and t > now and temperature is not Temperature.COLD
        ]
        ready = row.sales_ready_at
        if row.stage in SALES_READY and ready is not None and ready <= now:
            deadline = ready + self.sla
            touched = row.sales_touch_at
            if touched is None or touched > deadline:
                if deadline <= now:
                    overdue_for = ready
                elif touched is None or touched > now:
                    due.append(deadline)
        return _State(row.stage, temperature.value, overdue_for, min(due, default=None))

    def _changes(self, row: _Row, was: _State | None, after: _State, this: _Pass) -> list[Change]:
        lead_id, now = UUID(row.lead_id), this.now
        found: list[Change] = []
        if was is None or after.stage != was.stage:
            fact_id, kind, entered = this.moves.get(row.lead_id, (None, "rules", now))
            found.append(
                StageChanged(
                    lead_id=lead_id,
                    from_=Stage(was.stage) if was else None,
                    to=Stage(after.stage),
                    at=entered,
                    observed_at=now,
                    cause_fact_id=fact_id,
                    cause_kind="rules" if this.cause == "rules" else kind,
                    rules_version=row.rules_version,
                )
            )
        if was is None or after.temperature != was.temperature:
            to = Temperature(after.temperature)
            from_ = Temperature(was.temperature) if was else None
            cooled = from_ is not None and _COOLER[to] < _COOLER[from_]
            found.append(
                TemperatureChanged(
                    lead_id=lead_id,
                    from_=from_,
                    to=to,
                    at=_temperature_since(row, to, now),
                    observed_at=now,
                    cause="rules" if this.cause == "rules" else "time" if cooled else this.cause,
                    rules_version=row.rules_version,
                )
            )
        overdue = after.overdue_for
        if overdue is not None and (was is None or overdue != was.overdue_for):
            due_at = overdue + self.sla
            found.append(
                HandoffOverdue(
                    lead_id=lead_id,
                    stage=Stage(after.stage),
                    sales_ready_at=overdue,
                    due_at=due_at,
                    hours=self.sla_hours,
                    at=due_at,
                    observed_at=now,
                )
            )
        elif overdue is None and was and was.overdue_for and after.stage in SALES_READY:
            # Still sales-ready, no longer overdue: a late fact shows the touch was in time.
            touched = None if this.cause == "rules" else row.sales_touch_at
            found.append(
                HandoffOverdueWithdrawn(
                    lead_id=lead_id,
                    stage=Stage(after.stage),
                    sales_ready_at=was.overdue_for,
                    sales_touch_at=touched,
                    at=touched or now,
                    observed_at=now,
                    cause="rules" if this.cause == "rules" else "fact",
                )
            )
        return found


def _lock(tx: Transaction) -> None:
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_advisory_xact_lock(?)", [ANNOUNCE_LOCK])


def counted_changes(
    announced: Iterable[Announcement],
    *,
    time_driven: bool = False,
    arrived: Mapping[str, float] | None = None,
) -> None:
    """Count committed changes by type, and how long each took to be announced.

    A time-driven change, from its instant; one a fact caused, from when the fact arrived
    (``arrived``: lead id -> the epoch seconds its first message of the batch reached
    ``lead.events``).
    """
    now = time.time()
    for announcement in announced:
        change = announcement.change
        CHANGES.labels(type=type(change).__name__).inc()
        if time_driven:
            lateness = (change.observed_at - change.at).total_seconds()
            TIME_DRIVEN_DELAY.observe(max(lateness, 0.0))
        elif arrived and (since := arrived.get(str(change.lead_id))) is not None:
            ANNOUNCEMENT_DELAY.observe(max(now - since, 0.0))


def has_announced(tx: Transaction) -> bool:
    """Whether anything was announced yet (else downstream has heard of no lead)."""
    return tx.value("SELECT 1 FROM lifecycle_announced LIMIT 1") is not None


def _temperature(row: _Row, now: datetime) -> Temperature:
    if row.hot_until is not None and now < row.hot_until:
        return Temperature.HOT
    if row.warm_until is not None and now < row.warm_until:
        return Temperature.WARM
    return Temperature.COLD


def _temperature_since(row: _Row, temperature: Temperature, now: datetime) -> datetime:
    """When the lead took this temperature: the instant it cooled to it, or its last fact."""
    cooled_at = {Temperature.WARM: row.hot_until, Temperature.COLD: row.warm_until}.get(temperature)
    if cooled_at is not None and cooled_at <= now:
        return cooled_at
    return row.last_fact_at or row.first_fact_at or now


_ROW_COLUMNS = (
    "lead_id, stage, hot_until, warm_until, first_fact_at, last_fact_at, sales_ready_at, "
    "sales_touch_at, rules_version"
)


def _read_rows(tx: Transaction, slot: Slot, keys: Sequence[str]) -> dict[str, _Row]:
    """The live lead rows among ``keys`` (merged leads and visitors are not announced)."""
    marks = ", ".join("?" * len(keys))
    found = {}
    for values in tx.rows(
        f"SELECT {_ROW_COLUMNS} FROM lifecycle_leads_{slot} "
        f"WHERE lead_id IN ({marks}) AND merged_into IS NULL AND is_lead = 1",
        list(keys),
    ):
        lead_id, stage, hot, warm, first, last, ready, touched, rules_version = values
        found[lead_id] = _Row(
            lead_id=lead_id,
            stage=stage,
            hot_until=instant(hot),
            warm_until=instant(warm),
            first_fact_at=instant(first),
            last_fact_at=instant(last),
            sales_ready_at=instant(ready),
            sales_touch_at=instant(touched),
            rules_version=rules_version,
        )
    return found


def _read_pending(
    tx: Transaction, survivors: Sequence[str]
) -> dict[str, list[tuple[str, datetime]]]:
    """The announced leads merged into these survivors and not told yet, with the instants."""
    marks = ", ".join("?" * len(survivors))
    found: dict[str, list[tuple[str, datetime]]] = {}
    for lead_id, survivor, at in tx.rows(
        "SELECT lead_id, merged_into, at FROM lifecycle_pending_merges "
        f"WHERE merged_into IN ({marks})",
        list(survivors),
    ):
        when = instant(at)
        if when is not None:  # (the column is NOT NULL)
            found.setdefault(survivor, []).append((lead_id, when))
    return found


def _read_announced(tx: Transaction, keys: Sequence[str]) -> dict[str, _State]:
    marks = ", ".join("?" * len(keys))
    return {
        lead_id: _State(stage, temperature, instant(overdue_for), instant(due_at))
        for lead_id, stage, temperature, overdue_for, due_at in tx.rows(
            "SELECT lead_id, stage, temperature, overdue_for, due_at FROM lifecycle_announced "
            f"WHERE lead_id IN ({marks})",
            list(keys),
        )
    }


def _causes(
    tx: Transaction, slot: Slot, rows: Iterable[_Row]
) -> dict[str, tuple[str, str, datetime]]:
    """Per lead: the fact that moved it into its stage, that fact's kind, and when it did."""
    keys = [row.lead_id for row in rows]
    if not keys:
        return {}
    marks = ", ".join("?" * len(keys))
    found: dict[str, tuple[str, str, datetime]] = {}
    for lead_id, fact_id, entered_at, body in tx.rows(
        "SELECT h.lead_id, h.fact_id, h.entered_at, f.body "
        f"FROM lifecycle_stage_history_{slot} h LEFT JOIN lifecycle_lead_facts_{slot} f "
        "ON f.lead_id = h.lead_id AND f.fact_id = h.fact_id "
        f"WHERE h.lead_id IN ({marks}) AND h.exited_at IS NULL",
        keys,
    ):
        entered = instant(entered_at)
        assert entered is not None  # noqa: S101 (NOT NULL)
        found[lead_id] = (fact_id, _kind(body), entered)
    return found


def _kind(body: str | None) -> str:
    if body is None:
        return "unknown"
    fact = _FACT.decode(body)
    if isinstance(fact, Qualification):
        return "qualification"
    if isinstance(fact, Disqualification):
        return "disqualification"
    return fact.kind


def _write_announced(tx: Transaction, states: dict[str, _State]) -> None:
    tx.executemany(
        "INSERT INTO lifecycle_announced (lead_id, stage, temperature, overdue_for, due_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (lead_id) DO UPDATE SET stage = excluded.stage, "
        "temperature = excluded.temperature, overdue_for = excluded.overdue_for, "
        "due_at = excluded.due_at",
        [
            (key, s.stage, s.temperature, s.overdue_for, s.due_at)
            for key, s in sorted(states.items())
        ],
    )
