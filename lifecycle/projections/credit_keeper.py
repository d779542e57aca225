"""Keeping each folded lead's attribution and quality up to date: at once, or a little later.

A replay, what-if and the tests credit a lead in the transaction that folds it. The views
worker defers it: the transaction that folds a batch only marks its leads due
(``lifecycle_credits_due``), and a later one credits every due lead at once, from its newest
fold. A lead folded many times in between (a backlog, a burst) is credited once; and the lead
rows the API reads are committed without waiting for attribution. The marks are written with
the batch, so a crash loses none: whatever is due when a worker starts is credited then.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from lifecycle.projections import credit
from lifecycle.rules import LeadView, Rulebook

if TYPE_CHECKING:
    from lifecycle.projections.sql import Slot, Transaction

Views = Callable[["Transaction", "Slot", list[str]], dict[str, LeadView | None]]
"""The newest fold of these leads (None: merged away, or no row)."""
CHUNK = 500


class CreditKeeper:
    """What each folded lead adds to attribution and quality, kept up to date.

    Remembers what up to ``remember`` leads added last and what that was made of, so that a
    part made of the same inputs is taken over (most facts change nothing attribution reads;
    a campaign touch mostly changes only the paths). The caller must ``forget`` whenever a
    transaction it took part in was rolled back.
    """

    def __init__(self, rules: Rulebook, *, remember: int = 0, defer: bool = False) -> None:
        self.rules = rules
        self.defer = defer
        self._remember = remember
        self._known: OrderedDict[str, tuple[credit.LeadCredits | None, credit.Inputs | None]] = (
            OrderedDict()
        )
        self.due = 0
        """How many leads this process marked due since it last credited them."""

    def forget(self) -> None:
        """Drop what is remembered (after a rollback, a rebalance, or a replay swapped in)."""
        self._known.clear()

    def folded(self, tx: Transaction, slot: Slot, views: Mapping[str, LeadView | None]) -> None:
        """These leads were folded again (None: merged away): credit them, or mark them due."""
        if not views:
            return
        if not self.defer:
            self._credit(tx, slot, views)
            return
        tx.executemany(
            f"INSERT INTO lifecycle_credits_due_{slot} (lead_id) VALUES (?) "
            "ON CONFLICT (lead_id) DO NOTHING",
            [(key,) for key in views],
        )
        self.due += len(views)

    def credit_due(self, tx: Transaction, slot: Slot, views: Views, *, limit: int = 0) -> int:
        """Credit the leads marked due (at most ``limit``, 0: all), each from its newest fold.

        How many were credited; fewer than ``limit`` means none is left.
        """
        keys = [
            str(key)
            for (key,) in tx.rows(
                f"SELECT lead_id FROM lifecycle_credits_due_{slot}"
                + (f" ORDER BY lead_id LIMIT {int(limit)}" if limit else "")
            )
        ]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            self._credit(tx, slot, views(tx, slot, chunk))
            tx.execute(
                f"DELETE FROM lifecycle_credits_due_{slot} "
                f"WHERE lead_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
        self.due = max(0, self.due - len(keys)) if limit and len(keys) == limit else 0
        return len(keys)

    def _credit(self, tx: Transaction, slot: Slot, views: Mapping[str, LeadView | None]) -> None:
        # What each lead added before, taken before any is kept: keeping one may push another
        # out of memory, which would then seem to have added nothing.
        known = {key: self._known.get(key) for key in views}
        stored = credit.read(tx, slot, [key for key, found in known.items() if found is None])
        changes: list[credit.Change] = []
        for key, view in views.items():
            before, was = known[key] or (stored.get(key), None)
            now = credit.inputs(view) if view is not None else None
            if view is None:
                after = None
            elif was is not None and was == now:
                after = before
            elif before is not None and was is not None and now is not None:
                after = credit.contribution(key, view, self.rules, before=(before, was), now=now)
            else:
                after = credit.contribution(key, view, self.rules)
            changes.append((before, after))
            self._keep(key, after, now)
        credit.update(tx, slot, changes)

    def _keep(
        self, key: str, added: credit.LeadCredits | None, inputs: credit.Inputs | None
    ) -> None:
        if not self._remember:
            return
        self._known[key] = (added, inputs)
        self._known.move_to_end(key)
        while len(self._known) > self._remember:
            self._known.popitem(last=False)
