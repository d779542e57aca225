"""The leads projection: ``lead.events`` payloads into the view tables of one slot.

Each changed lead is folded again from all of its facts with the rulebook (the same fold as
time travel and what-if), so arrival order never matters and a replay equals the live view.
Facts are keyed by (lead, fact id) and spend by fact id: a repeated event changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


class LeadsProjection:
    """Applies lead and campaign events to the tables of a slot."""

    def __init__(self, rules: Rulebook) -> None:
        self.rules = rules

    def apply(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> int:
        """Apply events in one transaction; how many leads were folded again."""
        changed: dict[UUID, int] = {}
        merged: dict[UUID, UUID] = {}
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
                merged[lead_id] = event.merged_into
                continue
            else:
                continue  # Captured, IdentifierAdded: nothing the fold needs
            changed[lead_id] = max(event.version, changed.get(lead_id, 0))
        for lead_id, version in changed.items():
            self.refold(tx, slot, lead_id, version)
        # After the refolds: a lead merged in the batch that created its row stays merged.
        for lead_id, survivor in merged.items():
            tx.execute(
                f"UPDATE lifecycle_leads_{slot} SET merged_into = ? WHERE lead_id = ?",
                [str(survivor), str(lead_id)],
            )
        return len(changed)

    def refold(self, tx: Transaction, slot: Slot, lead_id: UUID, version: int) -> LeadView:
        """Fold one lead from every fact the slot holds, and rewrite its rows."""
        bodies = tx.rows(
            f"SELECT body FROM lifecycle_lead_facts_{slot} WHERE lead_id = ?",
            [str(lead_id)],
        )
        facts = [
            _FACT_DECODER.decode(body.encode() if isinstance(body, str) else body)
            for (body,) in bodies
        ]
        view = fold(facts, self.rules)
        key = str(lead_id)
        row = _lead_row(key, version, view, facts)
        columns = ", ".join(row)
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "lead_id")
        tx.execute(
            f"INSERT INTO lifecycle_leads_{slot} ({columns}) VALUES ({', '.join('?' * len(row))}) "
            f"ON CONFLICT (lead_id) DO UPDATE SET {updates}",
            list(row.values()),
        )
        tx.execute(f"DELETE FROM lifecycle_stage_history_{slot} WHERE lead_id = ?", [key])
        tx.executemany(
            f"INSERT INTO lifecycle_stage_history_{slot} "
            "(lead_id, seq, stage, entered_at, exited_at, fact_id) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (key, seq, move.stage.value, move.entered_at, move.exited_at, move.fact_id)
                for seq, move in enumerate(view.history)
            ],
        )
        tx.execute(f"DELETE FROM lifecycle_lead_revenue_{slot} WHERE lead_id = ?", [key])
        tx.executemany(
            f"INSERT INTO lifecycle_lead_revenue_{slot} (lead_id, currency, amount_minor) "
            "VALUES (?, ?, ?)",
            [(key, currency, amount) for currency, amount in view.revenue.items()],
        )
        return view

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
