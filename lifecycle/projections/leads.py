"""The leads projection: ``lead.events`` payloads into the view tables of one slot.

Each changed lead is folded again from all of its facts with the rulebook (the same fold as
time travel and what-if), so arrival order never matters and a replay equals the live view.
Facts are keyed by (lead, fact id) and spend by fact id: a repeated event changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import msgspec

from lifecycle.facts import Fact, Qualification, Spend, Touch
from lifecycle.lead_events import PUBLISHED, LeadEvent
from lifecycle.projections.schema import STAGES
from lifecycle.projections.store import Slot, Transaction
from lifecycle.rules import LeadView, Rulebook, fold
from lifecycle.vocabulary import Stage

_FACT_ENCODER = msgspec.json.Encoder()
_FACT_DECODER = msgspec.json.Decoder(Fact)
SALES_READY = (Stage.SQL, Stage.PQL, Stage.SERVICE_QUALIFIED)
# The stored events whose lead events change the views (Captured and IdentifierAdded do not).
FOLDED_TOPICS = tuple(
    topic
    for topic, (_, name) in PUBLISHED.items()
    if name in {"FactRecorded", "Absorbed", "MergedInto", "SpendRecorded"}
)
# Leads folded per query: few statements per batch, well under SQLite's parameter limit.
FOLDS_PER_QUERY = 500


@dataclass
class Changes:
    """What stored events changed: leads to fold again (at their newest version), merges."""

    versions: dict[UUID, int] = field(default_factory=dict)
    merged: dict[UUID, UUID] = field(default_factory=dict)

    def saw(self, lead_id: UUID, version: int) -> None:
        """A lead changed, at this version."""
        self.versions[lead_id] = max(version, self.versions.get(lead_id, 0))


class LeadsProjection:
    """Applies lead and campaign events to the tables of a slot."""

    def __init__(self, rules: Rulebook) -> None:
        self.rules = rules

    def apply(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> int:
        """Apply events in one transaction; how many leads were folded again."""
        changes = self._store(tx, slot, events)
        self._finish(tx, slot, changes)
        return len(changes.versions)

    def apply_whole(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> int:
        """Apply events that carry every fact of each lead they name; how many leads folded.

        A replay from the store reads lead by lead: each lead is folded from the facts in
        hand, with nothing read back from the slot.
        """
        changes = self._store(tx, slot, events)
        facts: dict[UUID, dict[str, Fact]] = defaultdict(dict)
        for event in events:
            for fact in _facts_of(event):
                facts[event.aggregate_id].setdefault(fact.fact_id, fact)
        self._write_folds(
            tx,
            slot,
            {str(i): (v, list(facts[i].values())) for i, v in changes.versions.items()},
        )
        self._mark_merged(tx, slot, changes)
        return len(changes.versions)

    def _store(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> Changes:
        """Keep the events' facts and spend; which leads must be folded again (not yet done)."""
        changes = Changes()
        facts: list[tuple[object, ...]] = []
        spend: list[tuple[object, ...]] = []
        for event in events:
            if event.aggregate == "campaign":
                if event.spend is not None:
                    spend.append(_spend_row(event, event.spend))
                continue
            if event.merged_into is not None:
                changes.merged[event.aggregate_id] = event.merged_into
                continue
            new = _facts_of(event)
            if not new:
                continue  # Captured, IdentifierAdded: nothing the fold needs
            key = str(event.aggregate_id)
            facts.extend((key, f.fact_id, f.at, _FACT_ENCODER.encode(f).decode()) for f in new)
            changes.saw(event.aggregate_id, event.version)
        tx.executemany(
            f"INSERT INTO lifecycle_lead_facts_{slot} (lead_id, fact_id, at, body) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (lead_id, fact_id) DO NOTHING",
            facts,
        )
        tx.executemany(
            f"INSERT INTO lifecycle_spend_{slot} "
            "(fact_id, campaign_id, channel, currency, amount_minor, period_start, period_end, "
            "month) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fact_id) DO NOTHING",
            spend,
        )
        return changes

    def _finish(self, tx: Transaction, slot: Slot, changes: Changes) -> None:
        """Fold the changed leads again, then mark the merged ones."""
        versions = list(changes.versions.items())
        for start in range(0, len(versions), FOLDS_PER_QUERY):
            self._refold(tx, slot, dict(versions[start : start + FOLDS_PER_QUERY]))
        self._mark_merged(tx, slot, changes)

    def _refold(self, tx: Transaction, slot: Slot, versions: dict[UUID, int]) -> None:
        """Fold leads from every fact the slot holds, and rewrite their rows."""
        keys = [str(lead_id) for lead_id in versions]
        marks = ", ".join("?" * len(keys))
        bodies: dict[str, list[Fact]] = defaultdict(list)
        for key, body in tx.rows(
            f"SELECT lead_id, body FROM lifecycle_lead_facts_{slot} WHERE lead_id IN ({marks})",
            keys,
        ):
            bodies[key].append(_FACT_DECODER.decode(body))
        self._write_folds(
            tx,
            slot,
            {
                key: (version, bodies[key])
                for key, version in zip(keys, versions.values(), strict=True)
            },
        )

    def _write_folds(
        self, tx: Transaction, slot: Slot, leads: dict[str, tuple[int, list[Fact]]]
    ) -> None:
        """Fold each lead (id: its version and every fact) and rewrite its rows."""
        if not leads:
            return
        rows: list[dict[str, object]] = []
        history: list[tuple[object, ...]] = []
        revenue: list[tuple[object, ...]] = []
        for key, (version, facts) in leads.items():
            view = fold(facts, self.rules)
            rows.append(_lead_row(key, version, view, facts))
            history.extend(
                (key, seq, move.stage.value, move.entered_at, move.exited_at, move.fact_id)
                for seq, move in enumerate(view.history)
            )
            revenue.extend((key, currency, amount) for currency, amount in view.revenue.items())
        columns = list(rows[0])
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "lead_id")
        tx.executemany(
            f"INSERT INTO lifecycle_leads_{slot} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (lead_id) DO UPDATE SET {updates}",
            [list(row.values()) for row in rows],
        )
        for start in range(0, len(leads), FOLDS_PER_QUERY):
            keys = list(leads)[start : start + FOLDS_PER_QUERY]
            marks = ", ".join("?" * len(keys))
            for table in ("lifecycle_stage_history", "lifecycle_lead_revenue"):
                tx.execute(f"DELETE FROM {table}_{slot} WHERE lead_id IN ({marks})", keys)
        tx.executemany(
            f"INSERT INTO lifecycle_stage_history_{slot} "
            "(lead_id, seq, stage, entered_at, exited_at, fact_id) VALUES (?, ?, ?, ?, ?, ?)",
            history,
        )
        tx.executemany(
            f"INSERT INTO lifecycle_lead_revenue_{slot} (lead_id, currency, amount_minor) "
            "VALUES (?, ?, ?)",
            revenue,
        )

    @staticmethod
    def _mark_merged(tx: Transaction, slot: Slot, changes: Changes) -> None:
        # After the folds: a lead merged in the batch that created its row stays merged.
        tx.executemany(
            f"UPDATE lifecycle_leads_{slot} SET merged_into = ? WHERE lead_id = ?",
            [(str(survivor), str(lead_id)) for lead_id, survivor in changes.merged.items()],
        )


def _facts_of(event: LeadEvent) -> list[Fact]:
    """The facts a lead event brings (FactRecorded: one; Absorbed: the absorbed lead's)."""
    if event.aggregate != "lead":
        return []
    return [event.fact] if event.fact is not None else event.facts


def _spend_row(event: LeadEvent, spend: Spend) -> tuple[object, ...]:
    return (
        spend.fact_id,
        event.campaign_key or str(event.aggregate_id),
        spend.channel,
        spend.currency,
        spend.amount_minor,
        spend.period_start,
        spend.period_end,
        spend.period_start.strftime("%Y-%m"),
    )


def _lead_row(
    lead_id: str, version: int, view: LeadView, facts: Sequence[Fact]
) -> dict[str, object]:
    became = {f"became_{stage}_at": view.became_at(Stage(stage)) for stage in STAGES}
    last_fact = view.last_fact_at
    ready_at = _sales_ready_at(view)
    lead_at = view.became_at(Stage.LEAD)
    return {
        "lead_id": lead_id,
        "version": version,
        "stage": view.stage.value if view.stage else None,
        "is_lead": int(view.is_lead),
        "fit": view.fit,
        "engagement": view.engagement,
        "engaged_at": view.engaged_at,
        "score": view.score_at(last_fact) if last_fact else float(view.fit),
        "hot_until": view.hot_until,
        "warm_until": view.warm_until,
        "first_fact_at": view.first_fact_at,
        "last_fact_at": last_fact,
        "last_touch_at": view.last_touch_at,
        "last_hand_raise_at": view.last_hand_raise_at,
        **became,
        "acquisition_campaign": view.acquisition_campaign,
        "acquisition_channel": view.acquisition_channel,
        "acquisition_month": lead_at.strftime("%Y-%m") if lead_at else None,
        "referrer_lead_id": str(view.referrer_lead_id) if view.referrer_lead_id else None,
        "unsubscribed": int(view.unsubscribed),
        "sales_ready_at": ready_at,
        "sales_touch_at": _first_sales_touch(facts, ready_at),
        "facts": view.facts,
        "rules_version": view.rules_version,
    }


def _sales_ready_at(view: LeadView) -> datetime | None:
    """When the lead last became sales-ready (sql, pql, service_qualified), if it still is."""
    if view.stage not in SALES_READY:
        return None
    ready = None
    for move in reversed(view.history):
        if move.stage not in SALES_READY:
            break
        ready = move.entered_at
    return ready


def _first_sales_touch(facts: Sequence[Fact], since: datetime | None) -> datetime | None:
    """The first sales contact at or after ``since``: a sales_contacted touch or a qualification."""
    if since is None:
        return None
    touches = [
        f.at
        for f in facts
        if f.at >= since
        and (
            isinstance(f, Qualification)
            or (isinstance(f, Touch) and f.properties.get("sales_contacted"))
        )
    ]
    return min(touches, default=None)
