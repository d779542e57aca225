"""Attribution and quality totals the views keep up to date: what each live lead adds.

Per lead, the rules say (``rules.attribution``, ``rules.outcomes``) how each heuristic model
credits its conversions, which path it took for the data-driven model, and what it counts for
in lead quality. The views worker keeps the sums of those per conversion day, campaign,
channel and month, so that an answer sums a few thousand rows instead of folding every lead.
A lead's contribution is kept beside the totals (``lifecycle_lead_credits``) and taken back
when the lead changes or is merged away.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from lifecycle.domain.instants import month_of
from lifecycle.domain.vocabulary import HEURISTIC_MODELS
from lifecycle.rules import LeadView, Rulebook
from lifecycle.rules.attribution import Path, conversions, paths, shares
from lifecycle.rules.fold import CampaignTouch
from lifecycle.rules.markov import START, collapse
from lifecycle.rules.outcomes import Outcome, outcomes

if TYPE_CHECKING:
    from lifecycle.projections.sql import Slot, Transaction

END = ""
"""The campaign (and channel) a path moves to when it ends (converted or not, as its row says)."""
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


class PathRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A lead's path for the data-driven model, for each of ``conversions``.

    The path goes from the start through its campaigns (each with the channel its touch gave,
    repeats in a row counted once) to a conversion (``converted``) or not. A path that did not
    convert is the same for every kind the lead has not made: one row says it for them all.
    The chain over channels is the chain over these campaigns with each read as its channel:
    moves between two campaigns of one channel become a channel's moves to itself, which change
    no removal effect (``rules.markov``).
    """

    conversions: tuple[str, ...]
    dated_on: date
    converted: bool
    states: tuple[tuple[str, str], ...]


class EndValue(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The revenue of a converted path, by the campaign (and channel) it ended in."""

    conversion: str
    dated_on: date
    campaign: str
    channel: str
    currency: str
    amount_minor: int


class LeadCredits(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What one live lead adds to the attribution and quality totals."""

    lead_id: str
    credits: tuple[CreditRow, ...]
    paths: tuple[PathRow, ...]
    values: tuple[EndValue, ...]
    outcomes: tuple[Outcome, ...]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(LeadCredits)


class Inputs(NamedTuple):
    """What each part of a lead's contribution is made of: the same inputs, the same part."""

    credits: tuple[object, ...]
    paths: tuple[object, ...]
    outcomes: tuple[object, ...]


def inputs(view: LeadView) -> Inputs:
    """The inputs of each part (most facts change none, or only the paths)."""
    made = tuple(conversions(view).items())
    touches = view.campaign_touches
    last = max((at for _, at in made), default=None)
    credited = touches if last is None else touches[: bisect_right(touches, last, key=_at)]
    revenue = tuple(view.revenue.items())
    first = touches[0] if touches else None
    return Inputs(
        credits=(view.is_lead, made, credited, revenue, view.referred_at),
        paths=(view.is_lead, made, touches, revenue),
        outcomes=(view.is_lead, made, view.purchases, view.referred_at, first),
    )


def _at(touch: CampaignTouch) -> datetime:
    return touch.at


def contribution(
    lead_id: str,
    view: LeadView,
    rules: Rulebook,
    *,
    before: tuple[LeadCredits, Inputs] | None = None,
    now: Inputs | None = None,
) -> LeadCredits | None:
    """What a live lead adds (None: a visitor, or never a lead).

    ``before``: what it added before and what that was made of; parts made of the same inputs
    (``now``) are taken over instead of worked out again.
    """
    if not view.is_lead:
        return None
    old, was = before if before is not None else (None, None)
    same = was is not None and now is not None
    credit_rows = (
        old.credits
        if same and old is not None and was.credits == now.credits  # type: ignore[union-attr]
        else _credit_rows(view, rules)
    )
    if same and old is not None and was.paths == now.paths:  # type: ignore[union-attr]
        path_rows, values = old.paths, old.values
    else:
        path_rows, values = _paths(view, rules)
    kept = same and old is not None and was.outcomes == now.outcomes  # type: ignore[union-attr]
    found = old.outcomes if kept and old is not None else tuple(outcomes(view))
    return LeadCredits(lead_id, credit_rows, path_rows, values, found)


def _credit_rows(view: LeadView, rules: Rulebook) -> tuple[CreditRow, ...]:
    return tuple(
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


def _paths(view: LeadView, rules: Rulebook) -> tuple[tuple[PathRow, ...], tuple[EndValue, ...]]:
    rows: list[PathRow] = []
    values: list[EndValue] = []
    not_converted: list[str] = []
    open_path: Path | None = None  # (the same touches for every kind not made)
    for path in paths(view, rules):
        if not path.converted:
            not_converted.append(path.conversion.value)
            open_path = path
            continue
        states = tuple(collapse((t.campaign, t.channel) for t in path.touches))
        conversion, dated_on = path.conversion.value, path.dated_at.date()
        rows.append(PathRow((conversion,), dated_on, converted=True, states=states))
        campaign, channel = states[-1]
        values.extend(
            EndValue(conversion, dated_on, campaign, channel, currency, amount)
            for currency, amount in view.revenue.items()
        )
    if open_path is not None:
        states = tuple(collapse((t.campaign, t.channel) for t in open_path.touches))
        dated_on = open_path.dated_at.date()
        rows.append(PathRow(tuple(not_converted), dated_on, converted=False, states=states))
    return tuple(rows), tuple(values)


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


Change = tuple[LeadCredits | None, LeadCredits | None]
"""What a lead added before, and what it adds now (None: nothing)."""


def update(tx: Transaction, slot: Slot, changes: Iterable[Change]) -> None:
    """Take back what leads added before and add what they add now: totals and per-lead rows.

    Only the parts that differ are written (a new campaign touch mostly changes the paths).
    """
    totals = _Totals()
    gone: list[str] = []
    bodies: list[LeadCredits] = []
    moved: list[str] = []
    outcome_rows: list[tuple[object, ...]] = []
    for before, after in changes:
        if before == after:
            continue
        totals.add(before, after)
        if after is None:
            gone.append(before.lead_id)  # type: ignore[union-attr]
            continue
        bodies.append(after)
        if before is None or before.outcomes != after.outcomes:
            moved.append(after.lead_id)
            outcome_rows.extend(
                _outcome_row(after.lead_id, seq, o) for seq, o in enumerate(after.outcomes)
            )
    totals.write(tx, slot)
    _delete(tx, f"lifecycle_lead_credits_{slot}", gone)
    _delete(tx, f"lifecycle_outcomes_{slot}", gone + moved)
    tx.executemany(
        f"INSERT INTO lifecycle_lead_credits_{slot} (lead_id, body) VALUES (?, ?) "
        "ON CONFLICT (lead_id) DO UPDATE SET body = excluded.body",
        [(c.lead_id, _ENCODER.encode(c).decode()) for c in bodies],
    )
    tx.executemany(
        f"INSERT INTO lifecycle_outcomes_{slot} (lead_id, seq, kind, campaign, channel, "
        "acquired_month, acquired_at, days, valid_from, valid_until, currency, amount_minor) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        outcome_rows,
    )


def _outcome_row(lead_id: str, seq: int, o: Outcome) -> tuple[object, ...]:
    return (
        lead_id,
        seq,
        o.kind,
        o.campaign or "",
        o.channel,
        month_of(o.acquired_at),
        o.acquired_at,
        o.days,
        o.valid_from,
        o.valid_until,
        o.currency or "",
        o.amount_minor or 0,
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

    def add(self, before: LeadCredits | None, after: LeadCredits | None) -> None:
        """Take back what a lead added before and add what it adds now, part by part."""
        for sign, part in ((-1, before), (1, after)):
            if part is None:
                continue
            other = after if sign < 0 else before
            if other is None or other.credits != part.credits:
                self._credits(part.credits, sign)
            if other is None or other.paths != part.paths or other.values != part.values:
                self._paths(part, sign)
            if other is None or other.outcomes != part.outcomes:
                self._outcomes(part.outcomes, sign)

    def _credits(self, rows: tuple[CreditRow, ...], sign: int) -> None:
        for r in rows:
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

    def _paths(self, c: LeadCredits, sign: int) -> None:
        for path in c.paths:
            ends = (*path.states, (END, END))
            for conversion in path.conversions:
                source = (START, START)
                for i, target in enumerate(ends):
                    converted = int(path.converted and i == len(path.states))
                    self.moves[conversion, path.dated_on, converted, *source, *target][0] += sign
                    source = target
        for v in c.values:
            money = self.values[v.conversion, v.dated_on, v.campaign, v.channel, v.currency]
            money[0] += sign * v.amount_minor
            money[1] += sign

    def _outcomes(self, found: tuple[Outcome, ...], sign: int) -> None:
        for o in found:
            outcome_key = (
                o.kind,
                o.acquired_at.date(),
                o.campaign or "",
                o.channel,
                month_of(o.acquired_at),
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
            (
                "conversion",
                "dated_on",
                "converted",
                "from_campaign",
                "from_channel",
                "to_campaign",
                "to_channel",
            ),
            ("paths",),
            self.moves,
        )
        _add(
            tx,
            f"lifecycle_path_revenue_{slot}",
            ("conversion", "dated_on", "last_campaign", "last_channel", "currency"),
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
