"""The leads projection: ``lead.events`` payloads into the view tables of one slot.

Each changed lead is folded again from all of its facts with the rulebook (the same fold as
time travel and what-if), so arrival order never matters and a replay equals the live view.
Facts are keyed by (lead, fact id) and spend by fact id: a repeated event changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import msgspec

from lifecycle.facts import Fact, Qualification, Touch
from lifecycle.lead_events import LeadEvent
from lifecycle.projections.schema import STAGES
from lifecycle.projections.store import Slot, Transaction
from lifecycle.rules import LeadView, Rulebook, fold
from lifecycle.vocabulary import Stage

_FACT_ENCODER = msgspec.json.Encoder()
_FACT_DECODER = msgspec.json.Decoder(Fact)
SALES_READY = (Stage.SQL, Stage.PQL, Stage.SERVICE_QUALIFIED)
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

    def update(self, other: Changes) -> None:
        """Add another batch's changes."""
        for lead_id, version in other.versions.items():
            self.saw(lead_id, version)
        self.merged.update(other.merged)


class LeadsProjection:
    """Applies lead and campaign events to the tables of a slot."""

    def __init__(self, rules: Rulebook) -> None:
        self.rules = rules

    def apply(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> int:
        """Apply events in one transaction; how many leads were folded again."""
        changes = self.store(tx, slot, events)
        self.finish(tx, slot, changes)
        return len(changes.versions)

    def store(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> Changes:
        """Keep the events' facts and spend; which leads must be folded again (not yet done).

        A replay stores every page first and folds each lead once at the end (``finish``),
        instead of once for every page that changed it.
        """
        changes = Changes()
        for event in events:
            if event.aggregate == "campaign":
                if event.spend is not None:
                    self._record_spend(tx, slot, event)
                continue
            lead_id = event.aggregate_id
            if event.fact is not None:
                self._store_facts(tx, slot, lead_id, [event.fact])
            elif event.facts:
                self._store_facts(tx, slot, lead_id, event.facts)
            elif event.merged_into is not None:
                changes.merged[lead_id] = event.merged_into
                continue
            else:
                continue  # Captured, IdentifierAdded: nothing the fold needs
            changes.saw(lead_id, event.version)
        return changes

    def finish(self, tx: Transaction, slot: Slot, changes: Changes) -> None:
        """Fold the changed leads again, then mark the merged ones."""
        versions = list(changes.versions.items())
        for start in range(0, len(versions), FOLDS_PER_QUERY):
            self.refold(tx, slot, dict(versions[start : start + FOLDS_PER_QUERY]))
        # After the refolds: a lead merged in the batch that created its row stays merged.
        tx.executemany(
            f"UPDATE lifecycle_leads_{slot} SET merged_into = ? WHERE lead_id = ?",
            [(str(survivor), str(lead_id)) for lead_id, survivor in changes.merged.items()],
        )

    def refold(self, tx: Transaction, slot: Slot, versions: dict[UUID, int]) -> None:
        """Fold leads from every fact the slot holds, and rewrite their rows."""
        keys = [str(lead_id) for lead_id in versions]
        marks = ", ".join("?" * len(keys))
        bodies: dict[str, list[Fact]] = defaultdict(list)
        for key, body in tx.rows(
            f"SELECT lead_id, body FROM lifecycle_lead_facts_{slot} WHERE lead_id IN ({marks})",
            keys,
        ):
            bodies[key].append(_FACT_DECODER.decode(body))
        rows: list[dict[str, object]] = []
        history: list[tuple[object, ...]] = []
        revenue: list[tuple[object, ...]] = []
        for key, version in zip(keys, versions.values(), strict=True):
            facts = bodies[key]
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
        tx.execute(f"DELETE FROM lifecycle_stage_history_{slot} WHERE lead_id IN ({marks})", keys)
        tx.executemany(
            f"INSERT INTO lifecycle_stage_history_{slot} "
            "(lead_id, seq, stage, entered_at, exited_at, fact_id) VALUES (?, ?, ?, ?, ?, ?)",
            history,
        )
        tx.execute(f"DELETE FROM lifecycle_lead_revenue_{slot} WHERE lead_id IN ({marks})", keys)
        tx.executemany(
            f"INSERT INTO lifecycle_lead_revenue_{slot} (lead_id, currency, amount_minor) "
            "VALUES (?, ?, ?)",
            revenue,
        )

    def _store_facts(
        self, tx: Transaction, slot: Slot, lead_id: UUID, facts: Iterable[Fact]
    ) -> None:
        tx.executemany(
            f"INSERT INTO lifecycle_lead_facts_{slot} (lead_id, fact_id, at, body) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (lead_id, fact_id) DO NOTHING",
            [(str(lead_id), f.fact_id, f.at, _FACT_ENCODER.encode(f).decode()) for f in facts],
        )

    def _record_spend(self, tx: Transaction, slot: Slot, event: LeadEvent) -> None:
        spend = event.spend
        assert spend is not None  # noqa: S101 (checked by the caller)
        tx.execute(
            f"INSERT INTO lifecycle_spend_{slot} "
            "(fact_id, campaign_id, channel, currency, amount_minor, period_start, period_end, "
            "month) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fact_id) DO NOTHING",
            [
                spend.fact_id,
                event.campaign_key or str(event.aggregate_id),
                spend.channel,
                spend.currency,
                spend.amount_minor,
                spend.period_start,
                spend.period_end,
                spend.period_start.strftime("%Y-%m"),
            ],
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
