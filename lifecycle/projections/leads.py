"""The leads projection: ``lead.events`` payloads into the view tables of one slot.

Each changed lead is folded again from all of its facts with the rulebook (the same fold as
time travel and what-if), so arrival order never matters and a replay equals the live view.
Facts are keyed by (lead, fact id) and spend by fact id: a repeated event changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from lifecycle.contracts.lead_events import PUBLISHED, LeadEvent
from lifecycle.domain.facts import Fact, Qualification, Spend, Touch, ordered
from lifecycle.domain.vocabulary import Stage
from lifecycle.projections import credit, funnel
from lifecycle.projections.credit_keeper import CreditKeeper
from lifecycle.projections.schema import STAGES
from lifecycle.projections.sql import Slot, Transaction
from lifecycle.rules import LeadFold, LeadView, Rulebook, StageMove, fold, folded

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
    merged_at: dict[str, datetime] = field(default_factory=dict)
    erased: dict[str, datetime] = field(default_factory=dict)
    """Leads whose person was forgotten (their figures stay): downstream erases them too."""
    facts: dict[str, list[Fact]] = field(default_factory=lambda: defaultdict(list))
    """The facts each changed lead received (repeats included)."""

    def saw(self, lead_id: str, version: int, facts: Sequence[Fact]) -> None:
        """A lead received facts, at this version."""
        self.versions[lead_id] = max(version, self.versions.get(lead_id, 0))
        self.facts[lead_id].extend(facts)


@dataclass(frozen=True)
class _Written:
    """What a lead's rows in the slot say, besides the lead row itself."""

    history: tuple[StageMove, ...]
    revenue: dict[str, int]
    contribution: funnel.Contribution | None


@dataclass
class _Remembered:
    """A lead as the slot holds it after the last batch.

    The fold after its facts, the instants sales contacted it, and what its rows say (None
    until this projection wrote them).
    """

    fold: LeadFold
    contacts: list[datetime]
    written: _Written | None = None

    def continued(self, new: Sequence[Fact]) -> bool:
        """Add the new facts if none comes before the last one added; whether it could.

        A repeat of the last fact changes nothing; an earlier fact (late, or an older repeat)
        means folding every fact again.
        """
        last = self.fold.last
        fresh = ordered(
            [f for f in {f.fact_id: f for f in new}.values() if (f.at, f.fact_id) != last]
        )
        if fresh and last is not None and (fresh[0].at, fresh[0].fact_id) < last:
            return False
        for fact in fresh:
            self.fold.add(fact)
        self.contacts.extend(_sales_contacts(fresh))
        return True


@dataclass
class _Writes:
    """What folding a batch's leads writes: lead rows, stage histories, revenue, funnel."""

    rows: list[dict[str, object]] = field(default_factory=list)
    moved: dict[str, tuple[StageMove, ...]] = field(default_factory=dict)
    paid: dict[str, dict[str, int]] = field(default_factory=dict)
    removed: list[funnel.Contribution] = field(default_factory=list)
    added: list[funnel.Contribution] = field(default_factory=list)
    folded: dict[str, LeadView | None] = field(default_factory=dict)
    """The leads folded (None: merged away), for attribution and quality."""


Folded = tuple[int, LeadView, list[datetime]]
"""A lead folded again: its version, its view, and when sales contacted it."""


class LeadsProjection:
    """Applies lead and campaign events to the tables of a slot.

    With ``remember``, that many recently changed leads are remembered between batches: when a
    lead's new facts come after its others (as they mostly do), its fold goes on from where it
    was, instead of reading every fact back and folding them all again, and only the rows that
    change are written. The caller must ``forget`` them whenever the slot may have changed
    behind it.
    """

    def __init__(self, rules: Rulebook, *, remember: int = 0, defer_credits: bool = False) -> None:
        """``defer_credits``: attribution and quality a transaction later (``credit_due``)."""
        self.rules = rules
        self._remember = remember
        self._leads: OrderedDict[str, _Remembered] = OrderedDict()
        self.credits = CreditKeeper(rules, remember=remember, defer=defer_credits)

    def forget(self) -> None:
        """Drop the remembered leads (after a rollback, a rebalance, or a replay swapped in)."""
        self._leads.clear()
        self.credits.forget()

    def credit_due(self, tx: Transaction, slot: Slot, *, limit: int = 0) -> int:
        """Credit the leads whose attribution and quality were deferred (at most ``limit``)."""
        return self.credits.credit_due(tx, slot, self._newest, limit=limit)

    def _newest(self, tx: Transaction, slot: Slot, keys: list[str]) -> dict[str, LeadView | None]:
        """The newest fold of these leads (None: merged away): remembered, or from their facts."""
        marks = ", ".join("?" * len(keys))
        live = {
            str(lead_id)
            for lead_id, merged_into in tx.rows(
                f"SELECT lead_id, merged_into FROM lifecycle_leads_{slot} "
                f"WHERE lead_id IN ({marks})",
                keys,
            )
            if merged_into is None
        }
        found: dict[str, LeadView | None] = dict.fromkeys(keys)
        unread = []
        for key in live:
            remembered = self._leads.get(key)
            if remembered is not None:
                found[key] = remembered.fold.view()
            else:
                unread.append(key)
        for key, facts in self._read_facts(tx, slot, unread).items():
            found[key] = fold(facts, self.rules)
        return found

    def apply(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> Changes:
        """Apply events in one transaction; which leads were folded again, which merged."""
        changes = self._store(tx, slot, events)
        self._finish(tx, slot, changes)
        return changes

    def apply_whole(self, tx: Transaction, slot: Slot, events: Sequence[LeadEvent]) -> int:
        """Apply events that carry every fact of each lead they name; how many leads folded.

        A replay from the store reads lead by lead: each lead is folded from the facts in
        hand, with nothing read back from the slot.
        """
        changes = self._store(tx, slot, events)
        leads: dict[str, Folded] = {}
        for lead_id, version in changes.versions.items():
            facts = list({f.fact_id: f for f in changes.facts[lead_id]}.values())
            leads[lead_id] = (version, fold(facts, self.rules), _sales_contacts(facts))
        if changes.merged:
            _lock_referrers(tx)
        self._write_folds(tx, slot, leads)
        self._mark_merged(tx, slot, changes)
        return len(changes.versions)

    def missing_credits(self, tx: Transaction, slot: Slot) -> list[str]:
        """Live leads whose attribution and quality the slot lacks (views made before them)."""
        return [
            str(lead_id)
            for (lead_id,) in tx.rows(
                f"SELECT l.lead_id FROM lifecycle_leads_{slot} l "
                "WHERE l.merged_into IS NULL AND l.is_lead = 1 AND NOT EXISTS "
                f"(SELECT 1 FROM lifecycle_lead_credits_{slot} c WHERE c.lead_id = l.lead_id)"
            )
        ]

    def add_credits(self, tx: Transaction, slot: Slot, lead_ids: list[str]) -> None:
        """Fold these leads from the slot's facts and add what they bring to attribution."""
        found = [
            credit.contribution(key, fold(facts, self.rules), self.rules)
            for key, facts in self._read_facts(tx, slot, lead_ids).items()
        ]
        credit.update(tx, slot, [(None, c) for c in found if c is not None])

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
                changes.merged_at[str(event.aggregate_id)] = event.at
                continue
            if event.event == "Erased":
                changes.erased[str(event.aggregate_id)] = event.at
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
        leads: dict[str, Folded] = {}
        unread: list[tuple[str, int]] = []
        for key, version in changes.versions.items():
            remembered = self._leads.get(key)
            if remembered is not None and remembered.continued(changes.facts[key]):
                leads[key] = (version, remembered.fold.view(), remembered.contacts)
                self._leads.move_to_end(key)
            else:
                unread.append((key, version))
        for start in range(0, len(unread), FOLDS_PER_QUERY):
            chunk = dict(unread[start : start + FOLDS_PER_QUERY])
            for key, facts in self._read_facts(tx, slot, list(chunk)).items():
                before = self._leads.get(key)
                remembered = _Remembered(
                    folded(facts, self.rules),
                    _sales_contacts(facts),
                    written=before.written if before else None,  # (the rows did not change)
                )
                leads[key] = (chunk[key], remembered.fold.view(), remembered.contacts)
                self._keep(key, remembered)
        if changes.merged:
            _lock_referrers(tx)
        self._write_folds(tx, slot, leads)
        self._mark_merged(tx, slot, changes)

    def _keep(self, key: str, remembered: _Remembered) -> None:
        if not self._remember:
            return
        self._leads[key] = remembered
        self._leads.move_to_end(key)
        while len(self._leads) > self._remember:
            self._leads.popitem(last=False)

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

    def _write_folds(self, tx: Transaction, slot: Slot, leads: dict[str, Folded]) -> None:
        """Rewrite the rows of folded leads: the lead row always, the others if they changed.

        What changed is known for remembered leads; for the others, their stage history and
        revenue are written again and their contribution to the funnel totals read back.
        """
        if not leads:
            return
        writes = self._plan(tx, slot, leads)
        _resolve_referrers(tx, slot, writes.rows)
        self._upsert_leads(tx, slot, writes.rows)
        _delete_leads(tx, f"lifecycle_stage_history_{slot}", list(writes.moved))
        tx.executemany(
            f"INSERT INTO lifecycle_stage_history_{slot} "
            "(lead_id, seq, stage, entered_at, exited_at, fact_id) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (key, seq, m.stage.value, m.entered_at, m.exited_at, m.fact_id)
                for key, history in writes.moved.items()
                for seq, m in enumerate(history)
            ],
        )
        _delete_leads(tx, f"lifecycle_lead_revenue_{slot}", list(writes.paid))
        tx.executemany(
            f"INSERT INTO lifecycle_lead_revenue_{slot} (lead_id, currency, amount_minor) "
            "VALUES (?, ?, ?)",
            [
                (key, c, amount)
                for key, revenue in writes.paid.items()
                for c, amount in revenue.items()
            ],
        )
        funnel.update(tx, slot, writes.removed, writes.added)
        self.credits.folded(tx, slot, writes.folded)

    def _plan(self, tx: Transaction, slot: Slot, leads: dict[str, Folded]) -> _Writes:
        """The rows to write for these folds, and what the funnel totals gain and lose."""
        unknown = [key for key in leads if (r := self._leads.get(key)) is None or not r.written]
        removed, merged = funnel.read_contributions(tx, slot, unknown)
        writes = _Writes(removed=removed)
        for key, (version, view, contacts) in leads.items():
            entered: dict[str, datetime] = {}
            for move in view.history:
                entered.setdefault(move.stage.value, move.entered_at)
            writes.rows.append(_lead_row(key, version, view, entered, contacts))
            # (A merged lead keeps its merged_into, and adds nothing.)
            contribution = None if key in merged else _contribution(key, view, entered)
            remembered = self._leads.get(key)
            written = remembered.written if remembered is not None else None
            writes.folded[key] = None if key in merged else view
            if written is None or written.history != view.history:
                writes.moved[key] = view.history
            if written is None or written.revenue != view.revenue:
                writes.paid[key] = view.revenue
            if written is None or written.contribution != contribution:
                if written is not None and written.contribution is not None:
                    writes.removed.append(written.contribution)
                if contribution is not None:
                    writes.added.append(contribution)
            if remembered is not None:
                remembered.written = _Written(view.history, view.revenue, contribution)
        for key in merged:
            # Not remembered: that it is merged is only known from its row, so a later batch
            # must read that again (else its facts would count it in the funnel once more).
            self._leads.pop(key, None)
        return writes

    @staticmethod
    def _upsert_leads(tx: Transaction, slot: Slot, rows: list[dict[str, object]]) -> None:
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

    def _mark_merged(self, tx: Transaction, slot: Slot, changes: Changes) -> None:
        # After the folds: a lead merged in the batch that created its row stays merged.
        for lead_id in changes.merged:
            self._leads.pop(lead_id, None)  # (its rows change here, and only here)
        live, _ = funnel.read_contributions(tx, slot, list(changes.merged))
        funnel.update(tx, slot, live, [])
        self.credits.folded(tx, slot, dict.fromkeys(changes.merged))
        tx.executemany(
            f"UPDATE lifecycle_leads_{slot} SET merged_into = ? WHERE lead_id = ?",
            [(survivor, lead_id) for lead_id, survivor in changes.merged.items()],
        )
        tx.executemany(
            f"INSERT INTO lifecycle_merges_{slot} (lead_id, merged_into) VALUES (?, ?) "
            "ON CONFLICT (lead_id) DO UPDATE SET merged_into = excluded.merged_into",
            list(changes.merged.items()),
        )
        # Leads referred by a merged lead were referred by its survivor (whenever they came).
        survivors = _standing(tx, slot, set(changes.merged.values()))
        tx.executemany(
            f"UPDATE lifecycle_leads_{slot} SET referrer_lead_id = ? WHERE referrer_lead_id = ?",
            [
                (survivors.get(survivor, survivor), lead_id)
                for lead_id, survivor in changes.merged.items()
            ],
        )


def _contribution(
    key: str, view: LeadView, entered: dict[str, datetime]
) -> funnel.Contribution | None:
    """What a live lead adds to the funnel totals (None: a visitor, or never a lead)."""
    if not view.is_lead:
        return None
    return funnel.contribution(
        key,
        entered=entered,
        campaign=view.acquisition_campaign,
        channel=view.acquisition_channel,
        revenue=view.revenue,
    )


# A PostgreSQL advisory lock key ("refr"): held by a transaction of the views that merges leads
# or names referrers, until it ends. Two views workers on PostgreSQL would otherwise miss each
# other's work (one naming a referrer the other merges at the same moment, each unable to see
# the other's rows), and a referrer would stay named by a merged lead. SQLite serializes
# writers anyway. (A deadlock with another writer fails the transaction, which is retried.)
REFERRERS_LOCK = 0x72656672


def _lock_referrers(tx: Transaction) -> None:
    if tx.dialect == "postgres":
        tx.execute("SELECT pg_advisory_xact_lock(?)", [REFERRERS_LOCK])


def _resolve_referrers(tx: Transaction, slot: Slot, rows: list[dict[str, object]]) -> None:
    """Name each row's referrer by the lead standing for it now (its survivor, if merged)."""
    referrers = {str(row["referrer_lead_id"]) for row in rows if row["referrer_lead_id"]}
    if referrers:
        _lock_referrers(tx)  # before any row of this batch is written
    standing = _standing(tx, slot, referrers) if referrers else {}
    for row in rows:
        referrer = row["referrer_lead_id"]
        if referrer is not None and str(referrer) in standing:
            row["referrer_lead_id"] = standing[str(referrer)]


# Merges chain rarely and shortly (a lead merged into one merged later): a bound, not a loop.
MAX_MERGE_CHAIN = 32


def _standing(tx: Transaction, slot: Slot, lead_ids: set[str]) -> dict[str, str]:
    """For each of these leads that was merged, the lead standing for it now (chains followed)."""
    merged_into: dict[str, str] = {}
    asked = set(lead_ids)
    for _ in range(MAX_MERGE_CHAIN):
        asked -= merged_into.keys()
        if not asked:
            break
        found: dict[str, str] = {}
        ordered_ids = sorted(asked)
        for start in range(0, len(ordered_ids), FOLDS_PER_QUERY):
            chunk = ordered_ids[start : start + FOLDS_PER_QUERY]
            found.update(
                tx.rows(
                    f"SELECT lead_id, merged_into FROM lifecycle_merges_{slot} "
                    f"WHERE lead_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
            )
        merged_into.update(found)
        asked = set(found.values())
    standing: dict[str, str] = {}
    for lead_id in lead_ids:
        current = lead_id
        for _ in range(MAX_MERGE_CHAIN):
            survivor = merged_into.get(current)
            if survivor is None or survivor == lead_id:
                break
            current = survivor
        if current != lead_id:
            standing[lead_id] = current
    return standing


def _delete_leads(tx: Transaction, table: str, keys: list[str]) -> None:
    """Delete these leads' rows from a table keyed by lead."""
    for start in range(0, len(keys), FOLDS_PER_QUERY):
        chunk = keys[start : start + FOLDS_PER_QUERY]
        tx.execute(f"DELETE FROM {table} WHERE lead_id IN ({', '.join('?' * len(chunk))})", chunk)


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
    lead_id: str,
    version: int,
    view: LeadView,
    entered: dict[str, datetime],
    contacts: Sequence[datetime],
) -> dict[str, object]:
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
        "sales_touch_at": min((at for at in contacts if at >= ready_at), default=None)
        if ready_at
        else None,
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


def _sales_contacts(facts: Iterable[Fact]) -> list[datetime]:
    """When sales contacted the lead: sales_contacted touches and qualifications."""
    return [
        f.at
        for f in facts
        if isinstance(f, Qualification)
        or (isinstance(f, Touch) and f.properties.get("sales_contacted"))
    ]
