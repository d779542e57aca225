"""Attribution and quality totals the views keep up to date: what each live lead adds.

Per lead, the rules say (``rules.attribution``, ``rules.outcomes``) how each heuristic model
credits its conversions, which path it took for the data-driven model, and what it counts for
in lead quality. The views worker keeps the sums of those per conversion day, campaign,
channel and month, so that an answer sums a few thousand rows instead of folding every lead.
A lead's contribution is kept beside the totals (``lifecycle_lead_credits``) and taken back
when the lead changes or is merged away.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING

import msgspec

from lifecycle.domain.vocabulary import HEURISTIC_MODELS
from lifecycle.rules import LeadView, Rulebook
from lifecycle.rules.attribution import paths, shares
from lifecycle.rules.markov import START, collapse
from lifecycle.rules.outcomes import Outcome, outcomes

if TYPE_CHECKING:
    from lifecycle.projections.sql import Slot, Transaction

DIMENSIONS = ("campaign", "channel")
"""What the states of a path are, for the data-driven model."""
END = ""
"""The state a path moves to when it ends (converted or not, as its row says)."""
OPEN = date(9999, 12, 31)
"""The day an outcome that still holds is valid until, in the totals."""
CHUNK = 500


class CreditRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A lead's credit for one conversion day, campaign, channel and month, under each model.

    ``shares`` in the order of ``HEURISTIC_MODELS``; each model credits the lead's revenue
    (per currency) with its share.
    """

    conversion: str
    converted_on: date
    campaign: str
    """'' for no campaign."""
    channel: str
    month: str
    shares: tuple[float, ...]
    revenue: dict[str, int]


class MoveRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One move of a lead's path.

    ``END`` as target: the path ended there, ``converted`` or not (other moves say False).
    """

    conversion: str
    dimension: str
    ended_on: date
    converted: bool
    source: str
    target: str


class EndValue(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The revenue of a converted path, by the state it ended in."""

    conversion: str
    dimension: str
    ended_on: date
    state: str
    currency: str
    amount_minor: int


class LeadCredits(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What one live lead adds to the attribution and quality totals."""

    lead_id: str
    credits: tuple[CreditRow, ...]
    moves: tuple[MoveRow, ...]
    values: tuple[EndValue, ...]
    outcomes: tuple[Outcome, ...]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(LeadCredits)


def contribution(lead_id: str, view: LeadView, rules: Rulebook) -> LeadCredits | None:
    """What a live lead adds (None: a visitor, or never a lead)."""
    if not view.is_lead:
        return None
    credit_rows = tuple(
        CreditRow(
            c.conversion.value,
            c.converted_at.date(),
            c.campaign or "",
            c.channel,
            c.month,
            c.shares,
            view.revenue,
        )
        for c in shares(view, rules)
    )
    moves: list[MoveRow] = []
    values: list[EndValue] = []
    for path in paths(view, rules):
        conversion, ended_on = path.conversion.value, path.ended_at.date()
        for dimension in DIMENSIONS:
            states = collapse(
                t.campaign if dimension == "campaign" else t.channel for t in path.touches
            )
            if not states:
                continue
            for source, target in zip([START, *states], [*states, END], strict=True):
                converted = path.converted and target == END
                moves.append(MoveRow(conversion, dimension, ended_on, converted, source, target))
            if path.converted:
                values.extend(
                    EndValue(conversion, dimension, ended_on, states[-1], currency, amount)
                    for currency, amount in view.revenue.items()
                )
    return LeadCredits(lead_id, credit_rows, tuple(moves), tuple(values), tuple(outcomes(view)))


def inputs(view: LeadView, entered: Mapping[str, datetime]) -> tuple[object, ...]:
    """What a lead's contribution is made of: the same inputs make the same contribution.

    ``entered``: when the lead first entered each stage.
    """
    return (
        view.is_lead,
        tuple(entered.get(stage) for stage in ("lead", "mql", "sql", "pql", "customer")),
        view.campaign_touches,
        view.purchases,
        view.referred_at,
    )


def read(tx: Transaction, slot: Slot, lead_ids: list[str]) -> dict[str, LeadCredits]:
    """What these leads add as the slot holds it now (leads that add nothing are missing)."""
    found: dict[str, LeadCredits] = {}
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        for lead_id, body in tx.rows(
            f"SELECT lead_id, body FROM lifecycle_lead_credits_{slot} "
            f"WHERE lead_id IN ({', '.join('?' * len(chunk))})",
            chunk,
        ):
            found[lead_id] = _DECODER.decode(body)
    return found


def update(
    tx: Transaction, slot: Slot, removed: Iterable[LeadCredits], added: Iterable[LeadCredits]
) -> None:
    """Take some leads' contributions back and add others', in the totals and per lead."""
    totals = _Totals()
    gone: list[LeadCredits] = []
    kept: list[LeadCredits] = []
    for sign, contributions in ((-1, removed), (1, added)):
        for c in contributions:
            totals.add(c, sign)
            (gone if sign < 0 else kept).append(c)
    totals.write(tx, slot)
    _delete(tx, f"lifecycle_lead_credits_{slot}", [c.lead_id for c in gone])
    _delete(tx, f"lifecycle_outcomes_{slot}", [c.lead_id for c in gone])
    tx.executemany(
        f"INSERT INTO lifecycle_lead_credits_{slot} (lead_id, body) VALUES (?, ?)",
        [(c.lead_id, _ENCODER.encode(c).decode()) for c in kept],
    )
    tx.executemany(
        f"INSERT INTO lifecycle_outcomes_{slot} (lead_id, seq, kind, campaign, channel, "
        "acquired_month, acquired_at, days, valid_from, valid_until, currency, amount_minor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                c.lead_id,
                seq,
                o.kind,
                o.campaign or "",
                o.channel,
                o.acquired_at.strftime("%Y-%m"),
                o.acquired_at,
                o.days,
                o.valid_from,
                o.valid_until,
                o.currency or "",
                o.amount_minor or 0,
            )
            for c in kept
            for seq, o in enumerate(c.outcomes)
        ],
    )


class _Totals:
    """Signed sums of contributions, per row of each totals table.

    The count of contributions comes last in each: it says when a row is empty.
    """

    def __init__(self) -> None:
        width = len(HEURISTIC_MODELS)
        self.credit: dict[tuple[object, ...], list[float]] = defaultdict(
            lambda: [0.0] * (width + 1)
        )
        self.revenue: dict[tuple[object, ...], list[float]] = defaultdict(
            lambda: [0.0] * (width + 1)
        )
        self.moves: dict[tuple[object, ...], list[float]] = defaultdict(lambda: [0])
        self.values: dict[tuple[object, ...], list[float]] = defaultdict(lambda: [0, 0])
        self.outcomes: dict[tuple[object, ...], list[float]] = defaultdict(lambda: [0, 0])

    def add(self, c: LeadCredits, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) one lead's contribution."""
        for r in c.credits:
            key = (r.conversion, r.converted_on, r.campaign, r.channel, r.month)
            total = self.credit[key]
            for m, share in enumerate(r.shares):
                total[m] += sign * share
            total[-1] += sign
            for currency, amount in r.revenue.items():
                money = self.revenue[(*key, currency)]
                for m, share in enumerate(r.shares):
                    money[m] += sign * share * amount
                money[-1] += sign
        for move in c.moves:
            self.moves[
                move.conversion,
                move.dimension,
                move.ended_on,
                int(move.converted),
                move.source,
                move.target,
            ][0] += sign
        for v in c.values:
            money = self.values[v.conversion, v.dimension, v.ended_on, v.state, v.currency]
            money[0] += sign * v.amount_minor
            money[1] += sign
        for o in c.outcomes:
            outcome_key = (
                o.kind,
                o.acquired_at.date(),
                o.campaign or "",
                o.channel,
                o.acquired_at.strftime("%Y-%m"),
                o.days,
                o.valid_from.date(),
                o.valid_until.date() if o.valid_until else OPEN,
                o.currency or "",
            )
            outcome = self.outcomes[outcome_key]
            outcome[0] += sign * (o.amount_minor or 0)
            outcome[1] += sign

    def write(self, tx: Transaction, slot: Slot) -> None:
        """Add the sums to the totals tables."""
        key = ("conversion", "converted_on", "campaign", "channel", "month")
        shares = (*(model.value for model in HEURISTIC_MODELS), "conversions")
        _add(tx, f"lifecycle_attribution_{slot}", key, shares, self.credit)
        _add(tx, f"lifecycle_attribution_revenue_{slot}", (*key, "currency"), shares, self.revenue)
        _add(
            tx,
            f"lifecycle_paths_{slot}",
            ("conversion", "dimension", "ended_on", "converted", "from_state", "to_state"),
            ("paths",),
            self.moves,
        )
        _add(
            tx,
            f"lifecycle_path_revenue_{slot}",
            ("conversion", "dimension", "ended_on", "last_state", "currency"),
            ("amount_minor", "paths"),
            self.values,
        )
        _add(
            tx,
            f"lifecycle_outcome_totals_{slot}",
            (
                "kind",
                "acquired_on",
                "campaign",
                "channel",
                "acquired_month",
                "days",
                "valid_from_on",
                "valid_until_on",
                "currency",
            ),
            ("amount_minor", "leads"),
            self.outcomes,
        )


def _add(
    tx: Transaction,
    table: str,
    keys: tuple[str, ...],
    values: tuple[str, ...],
    rows: dict[tuple[object, ...], list[float]],
) -> None:
    """Add signed amounts to a totals table; a row that counts nothing any more goes.

    The last of ``values`` counts the contributions in a row: it is what says the row is empty
    (a sum of shares may come back to a rounding error instead of zero).
    """
    changed = [(*key, *amounts) for key, amounts in rows.items() if any(amounts)]
    if not changed:
        return
    columns = (*keys, *values)
    tx.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{v} = {table}.{v} + excluded.{v}" for v in values),
        changed,
    )
    tx.executemany(
        f"DELETE FROM {table} WHERE {' AND '.join(f'{k} = ?' for k in keys)} AND {values[-1]} = 0",
        [key for key, amounts in rows.items() if amounts[-1] < 0],
    )


def _delete(tx: Transaction, table: str, lead_ids: list[str]) -> None:
    for start in range(0, len(lead_ids), CHUNK):
        chunk = lead_ids[start : start + CHUNK]
        tx.execute(f"DELETE FROM {table} WHERE lead_id IN ({', '.join('?' * len(chunk))})", chunk)
