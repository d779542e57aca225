"""Rebuilding the views (from the event store or from ``lead.events``) and what-if comparisons.

A replay fills the slot the views do not read, then swaps the views over in one transaction:
dashboards never see a half-built view. What-if fills that slot with other rules and compares
it with the live one, without swapping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from lifecycle.adapters.eventstore import count_events, scan_histories
from lifecycle.contracts.lead_events import LeadEvent, lead_event
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.announcer import Announcer, has_announced
from lifecycle.projections.leads import FOLDED_TOPICS, LeadsProjection
from lifecycle.projections.queries import CostRow, cost_per_lead, temperature_counts
from lifecycle.projections.schema import STAGES, live_leads
from lifecycle.projections.sql import SLOTS, Slot
from lifecycle.projections.store import ViewStore
from lifecycle.rules import Rulebook
from lifecycle.settings import Settings

Progress = Callable[[int, int], None]
"""Called with (done, total) as a replay goes."""

PAGE = 2_000


def _other(slot: Slot) -> Slot:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


def spare_slot(store: ViewStore) -> Slot:
    """The slot the views do not read, emptied for a rebuild."""
    spare = _other(store.setup())
    store.clear(spare)
    return spare


def fill_from_store(
    engine: LeadLifecycle,
    store: ViewStore,
    rules: Rulebook,
    settings: Settings,
    *,
    progress: Progress | None = None,
) -> Slot:
    """Fold the whole event store into the spare slot (no broker needed); that slot.

    The store is read lead by lead (only the events the views use), so each lead is folded
    once, from the facts in hand, and written with a page of others in a few statements.
    """
    slot = spare_slot(store)
    projection = LeadsProjection(rules)
    total = count_events(engine.recorder, FOLDED_TOPICS)
    done = 0
    page: list[LeadEvent] = []
    for history in scan_histories(engine.recorder, FOLDED_TOPICS):
        for stored in history:
            event = lead_event(
                engine.public_mapper.to_domain_event(stored),
                published_properties=settings.published_properties,
                campaign_key=engine.campaign_key,
            )
            if event is not None:
                page.append(event)
        done += len(history)
        if len(page) >= PAGE:
            with store.transaction() as tx:
                projection.apply_whole(tx, slot, page)
            page = []
            if progress is not None:
                progress(done, total)
    with store.transaction() as tx:
        projection.apply_whole(tx, slot, page)
    if progress is not None:
        progress(total, total)
    return slot


@dataclass(frozen=True)
class LogPage:
    """One partition's next lead events from a log, and the offset of the last message read."""

    partition: int
    last_offset: int
    events: list[LeadEvent]


class LeadEventLog(Protocol):
    """``lead.events`` read from its beginning (``consumers/views.py`` reads it from Kafka)."""

    topic: str
    topic_id: str | None
    reported: int
    """How many messages the log says it holds, for progress (it may hold more)."""

    def pages(self) -> Iterable[LogPage]:
        """The events in order per partition, a page at a time."""
        ...


def fill_from_log(
    log: LeadEventLog, store: ViewStore, rules: Rulebook, *, progress: Progress | None = None
) -> Slot:
    """Fold ``lead.events`` from its beginning into the spare slot, with its offsets; that slot.

    Each page and its partition's offset are written in one transaction, as the live worker
    writes them, so the worker goes on from where the replay ended once the slots are swapped.
    """
    slot = spare_slot(store)
    projection = LeadsProjection(rules)
    done = 0
    for page in log.pages():
        with store.transaction() as tx:
            projection.apply(tx, slot, page.events)
            store.record_offset(
                tx, slot, log.topic, page.partition, page.last_offset, topic_id=log.topic_id
            )
        done += len(page.events)
        if progress is not None:
            progress(done, max(log.reported, done))
    return slot


def swap(
    store: ViewStore, slot: Slot, rules: Rulebook, *, announcer: Announcer | None = None
) -> int:
    """Make ``slot`` the one the views read; with ``announcer``, announce what that changed.

    Under other rules, the differences are announced once, with cause ``rules``. Under the
    same rules nothing is (what time changes meanwhile, the views worker's tick announces).
    When nothing was announced yet, or the announcer is quiet, every lead's state is recorded
    as announced without a word. How many changes were announced.
    """
    with store.reading() as tx:
        previous = tx.value("SELECT rules_version FROM lifecycle_views_state WHERE id = 1")
        seeded = has_announced(tx)
    store.swap(slot, rules_version=rules.version)
    if announcer is None:
        return 0
    if announcer.quiet or not seeded:
        announcer.quietly().everyone(store)
        return 0
    return announcer.everyone(store) if previous != rules.version else 0


@dataclass
class WhatIf:
    """How the views would differ under other rules (live -> shadow)."""

    rules_version: str
    shadow_rules_version: str
    leads: int
    gained: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    moves: dict[str, int] = field(default_factory=dict)
    """Current stage changes, ``"mql -> sql"``: number of leads."""
    temperature: dict[str, tuple[int, int]] = field(default_factory=dict)
    cost_per_lead: list[tuple[CostRow, CostRow | None]] = field(default_factory=list)
    announcements: dict[str, int] = field(default_factory=dict)
    """What swapping the shadow in would announce: ``"StageChanged mql->lead"``: changes."""

    @property
    def differs(self) -> bool:
        """Whether anything would change."""
        return bool(
            any(self.gained.values())
            or any(self.lost.values())
            or self.moves
            or any(a != b for a, b in self.temperature.values())
            or any(live != shadow for live, shadow in self.cost_per_lead)
            or self.announcements
        )


def what_if(
    store: ViewStore, shadow: Slot, rules: Rulebook, *, at: datetime, sla_hours: int
) -> WhatIf:
    """Compare the live slot with a shadow slot filled with other rules (nothing announced)."""
    with store.transaction() as tx:
        live = store.active_slot(tx)
        live_version = tx.value("SELECT rules_version FROM lifecycle_views_state WHERE id = 1")
        became = ", ".join(
            f"l.became_{s}_at IS NOT NULL, w.became_{s}_at IS NOT NULL" for s in STAGES
        )
        rows = tx.rows(
            f"SELECT l.stage, w.stage, {became} FROM {live_leads(live)} l "
            f"JOIN {live_leads(shadow)} w ON w.lead_id = l.lead_id"
        )
        report = WhatIf(
            rules_version=str(live_version or "?"),
            shadow_rules_version=rules.version,
            leads=len(rows),
            gained=dict.fromkeys(STAGES, 0),
            lost=dict.fromkeys(STAGES, 0),
        )
        for row in rows:
            if row[0] != row[1]:
                move = f"{row[0]} -> {row[1]}"
                report.moves[move] = report.moves.get(move, 0) + 1
            for index, stage in enumerate(STAGES):
                was, would = bool(row[2 + 2 * index]), bool(row[3 + 2 * index])
                report.gained[stage] += int(would and not was)
                report.lost[stage] += int(was and not would)
        before = temperature_counts(tx, live, at)
        after = temperature_counts(tx, shadow, at)
        for temperature in ("hot", "warm", "cold"):
            report.temperature[temperature] = (
                before.get(("all", temperature), 0),
                after.get(("all", temperature), 0),
            )
        shadow_rows = {(r.group, r.currency): r for r in cost_per_lead(tx, shadow)}
        report.cost_per_lead = [
            (row, shadow_rows.get((row.group, row.currency))) for row in cost_per_lead(tx, live)
        ]
        if live_version == rules.version or not has_announced(tx):
            return report  # swapping it in would announce nothing
        keys = [key for (key,) in tx.rows(f"SELECT lead_id FROM lifecycle_leads_{shadow}")]
        announcer = Announcer(sla_hours=sla_hours, clock=lambda: at)
        for announcement in announcer.preview(tx, shadow, keys):
            name = announcement.summary
            report.announcements[name] = report.announcements.get(name, 0) + 1
    return report
