"""The leads projection: ``lead.events`` payloads into the view tables of one slot.

Each changed lead is folded again from all of its facts with the rulebook (the same fold as
time travel and what-if), so arrival order never matters and a replay equals the live view.
Facts are keyed by (lead, fact id) and spend by fact id: a repeated event changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from lifecycle.facts import Fact, Qualification, Spend, Touch, ordered
from lifecycle.lead_events import PUBLISHED, LeadEvent
from lifecycle.projections import funnel
from lifecycle.projections.schema import STAGES
from lifecycle.projections.store import Slot, Transaction
from lifecycle.rules import LeadFold, LeadView, Rulebook, fold, folded
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
    """What lead events changed: leads to fold again (at their newest version), and merges.

    Leads are named by their ids as the tables hold them.
    """

    versions: dict[str, int] = field(default_factory=dict)
    merged: dict[str, str] = field(default_factory=dict)
    facts: dict[str, list[Fact]] = field(default_factory=lambda: defaultdict(list))
    """The facts each changed lead received (repeats included)."""

    def saw(self, lead_id: str, version: int, facts: Sequence[Fact]) -> None:
        """A lead received facts, at this version."""
        self.versions[lead_id] = max(version, self.versions.get(lead_id, 0))
        self.facts[lead_id].extend(facts)


@dataclass
class _Remembered:
    """A lead as the slot holds it after the last batch: its facts, and the fold after them."""

    facts: list[Fact]
    fact_ids: set[str]
    fold: LeadFold

    @classmethod
    def of(cls, facts: list[Fact], rules: Rulebook) -> _Remembered:
        return cls(facts, {f.fact_id for f in facts}, folded(facts, rules))

    def continued(self, new: Sequence[Fact]) -> bool:
        """Add the facts not seen before, if they all come after the others; whether it could."""
        fresh = {f.fact_id: f for f in reversed(new) if f.fact_id not in self.fact_ids}
        facts = ordered(list(fresh.values()))
        if facts and not self.fold.follows(facts[0]):
            return False
        for fact in facts:
            self.fold.add(fact)
        self.facts.extend(facts)
        self.fact_ids.update(fresh)
        return True


class LeadsProjection:
    """Applies lead and campaign events to the tables of a slot.

    With ``remember``, the folds of that many recently changed leads are kept between batches:
    when a lead's new facts come after its others (as they mostly do), its fold goes on from
    where it was, instead of reading every fact back and folding them all again. The caller
    must ``forget`` them whenever the slot may have changed behind it.
    """

    def __init__(self, rules: Rulebook, *, remember: int = 0) -> None:
        self.rules = rules
        self._remember = remember
        self._folds: OrderedDict[str, _Remembered] = OrderedDict()

    def forget(self) -> None:
        """Drop the remembered folds (after a rollback, a rebalance, or a replay swapped in)."""
        self._folds.clear()

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
        leads = {}
        for lead_id, version in changes.versions.items():
            facts = list({f.fact_id: f for f in reversed(changes.facts[lead_id])}.values())
            leads[lead_id] = (version, fold(facts, self.rules), facts)
        self._write_folds(tx, slot, leads)
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
                changes.merged[str(event.aggregate_id)] = str(event.merged_into)
                continue
            new = _facts_of(event)
            if not new:
                continue  # Captured, IdentifierAdded: nothing the fold needs
            key = str(event.aggregate_id)
            facts.extend((key, f.fact_id, f.at, _FACT_ENCODER.encode(f).decode()) for f in new)
            changes.saw(key, event.version, new)
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
        leads: dict[str, tuple[int, LeadView, list[Fact]]] = {}
        unread: list[tuple[str, int]] = []
        for key, version in changes.versions.items():
            remembered = self._folds.get(key)
            if remembered is not None and remembered.continued(changes.facts[key]):
                leads[key] = (version, remembered.fold.view(), remembered.facts)
                self._folds.move_to_end(key)
            else:
                unread.append((key, version))
        for start in range(0, len(unread), FOLDS_PER_QUERY):
            chunk = dict(unread[start : start + FOLDS_PER_QUERY])
            for key, facts in self._read_facts(tx, slot, list(chunk)).items():
                remembered = _Remembered.of(facts, self.rules)
                leads[key] = (chunk[key], remembered.fold.view(), remembered.facts)
                self._keep(key, remembered)
        self._write_folds(tx, slot, leads)
        self._mark_merged(tx, slot, changes)

    def _keep(self, key: str, remembered: _Remembered) -> None:
        if not self._remember:
            return
        self._folds[key] = remembered
        self._folds.move_to_end(key)
        while len(self._folds) > self._remember:
            self._folds.popitem(last=False)

    @staticmethod
    def _read_facts(tx: Transaction, slot: Slot, keys: list[str]) -> dict[str, list[Fact]]:
        """Every fact the slot holds for these leads."""
        facts: dict[str, list[Fact]] = {key: [] for key in keys}
        marks = ", ".join("?" * len(keys))
        for key, body in tx.rows(
            f"SELECT lead_id, body FROM lifecycle_lead_facts_{slot} WHERE lead_id IN ({marks})",
            keys,
        ):
            facts[key].append(_FACT_DECODER.decode(body))
        return facts

    def _write_folds(
        self, tx: Transaction, slot: Slot, leads: dict[str, tuple[int, LeadView, list[Fact]]]
    ) -> None:
        """Rewrite the rows of folded leads (id: version, view, every fact)."""
        if not leads:
            return
        before, merged = funnel.read_contributions(tx, slot, list(leads))
        after: list[funnel.Contribution] = []
        rows: list[dict[str, object]] = []
        history: list[tuple[object, ...]] = []
        revenue: list[tuple[object, ...]] = []
        for key, (version, view, facts) in leads.items():
            row = _lead_row(key, version, view, facts)
            rows.append(row)
            if key not in merged:  # (a merged lead stays merged: its row keeps merged_into)
                added = funnel.contribution(key, {**row, "merged_into": None}, view.revenue)
                after.extend([added] if added else [])
            history.extend(
                (key, seq, move.stage.value, move.entered_at, move.exited_at, move.fact_id)
                for seq, move in enumerate(view.history)
            )
            revenue.extend((key, currency, amount) for currency, amount in view.revenue.items())
        columns = list(rows[0])
        table = f"lifecycle_leads_{slot}"
        updates = ", ".join(
            # A redelivered older event must not take the version back.
            f"version = CASE WHEN excluded.version > {table}.version "
            f"THEN excluded.version ELSE {table}.version END"
            if c == "version"
            else f"{c} = excluded.{c}"
            for c in columns
            if c != "lead_id"
        )
        tx.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT (lead_id) DO UPDATE SET {updates}",
            [list(row.values()) for row in rows],
        )
        keys = list(leads)
        for start in range(0, len(keys), FOLDS_PER_QUERY):
            chunk = keys[start : start + FOLDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            for table in ("lifecycle_stage_history", "lifecycle_lead_revenue"):
                tx.execute(f"DELETE FROM {table}_{slot} WHERE lead_id IN ({marks})", chunk)
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
        funnel.update(tx, slot, before, after)

    @staticmethod
    def _mark_merged(tx: Transaction, slot: Slot, changes: Changes) -> None:
        # After the folds: a lead merged in the batch that created its row stays merged.
        live, _ = funnel.read_contributions(tx, slot, list(changes.merged))
        funnel.update(tx, slot, live, [])
        tx.executemany(
            f"UPDATE lifecycle_leads_{slot} SET merged_into = ? WHERE lead_id = ?",
            [(survivor, lead_id) for lead_id, survivor in changes.merged.items()],
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
    entered: dict[str, datetime] = {}
    for move in view.history:
        entered.setdefault(move.stage.value, move.entered_at)
    last_fact = view.last_fact_at
    ready_at = _sales_ready_at(view)
    lead_at = entered.get("lead")
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
        **{f"became_{stage}_at": entered.get(stage) for stage in STAGES},
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
