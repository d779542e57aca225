"""Funnel totals the views keep up to date: what each live lead adds, by the day it was acquired.

Dashboards ask for the funnel and cost per lead over and over; counting the lead rows each time
took a second at a million touchpoints. So the views worker keeps, per acquisition day (UTC),
campaign and channel, how many leads reached each stage and made each step, and their revenue
per currency; and, per lead and step, the days the step took, so that medians are read in order
from an index. A lead's contribution is taken back when its row changes or it is merged away.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from lifecycle.projections.schema import (
    FUNNEL,
    FUNNEL_COUNTS,
    FUNNEL_ENTERED,
    STEP_NAMES,
    STEPS,
    instant,
)

if TYPE_CHECKING:
    from lifecycle.projections.sql import Slot, Transaction

COUNTS = FUNNEL_COUNTS
# Columns a contribution is made of.
ROW_COLUMNS = (
    "merged_into",
    "is_lead",
    *(f"became_{stage}_at" for stage in FUNNEL_ENTERED),
    "acquisition_campaign",
    "acquisition_channel",
)

Group = tuple[date, str, str]
"""(acquired on, campaign, channel); campaign and channel are '' when there is none."""


@dataclass(frozen=True)
class Contribution:
    """What one live lead adds to the funnel totals."""

    lead_id: str
    group: Group
    acquired_at: datetime
    counts: tuple[int, ...]
    days: dict[str, float]
    """Step name: days the step took (only steps the lead made)."""
    revenue: Mapping[str, int] = field(default_factory=dict)


def contribution(
    lead_id: str,
    *,
    entered: Mapping[str, datetime],
    campaign: str | None,
    channel: str | None,
    revenue: Mapping[str, int],
) -> Contribution | None:
    """What a live lead adds, from when it entered each stage (None: it never became a lead)."""
    acquired_at = entered.get("lead")
    if acquired_at is None:
        return None
    ready = [at for at in (entered.get("sql"), entered.get("pql")) if at is not None]
    reached = {**entered, "sales_ready": min(ready, default=None)}
    days = {
        name: (end - start) / timedelta(days=1)
        for name, (before, after) in zip(STEP_NAMES, STEPS, strict=True)
        if (start := reached.get(before)) is not None and (end := reached.get(after)) is not None
    }
    return Contribution(
        lead_id=lead_id,
        group=(acquired_at.date(), campaign or "", channel or ""),
        acquired_at=acquired_at,
        counts=(
            *(int(reached.get(stage) is not None) for stage in FUNNEL),
            *(int(name in days) for name in STEP_NAMES),
        ),
        days=days,
        revenue=revenue,
    )


def read_contributions(
    tx: Transaction, slot: Slot, lead_ids: list[str]
) -> tuple[list[Contribution], set[str]]:
    """What these leads add as the slot holds them now, and which of them are merged away."""
    contributions: list[Contribution] = []
    merged: set[str] = set()
    for start in range(0, len(lead_ids), 500):
        chunk = lead_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        revenue: dict[str, dict[str, int]] = defaultdict(dict)
        for lead_id, currency, amount in tx.rows(
            f"SELECT lead_id, currency, amount_minor FROM lifecycle_lead_revenue_{slot} "
            f"WHERE lead_id IN ({marks})",
            chunk,
        ):
            revenue[lead_id][currency] = int(amount)
        for lead_id, *values in tx.rows(
            f"SELECT lead_id, {', '.join(ROW_COLUMNS)} FROM lifecycle_leads_{slot} "
            f"WHERE lead_id IN ({marks})",
            chunk,
        ):
            row = dict(zip(ROW_COLUMNS, values, strict=True))
            if row["merged_into"] is not None:
                merged.add(lead_id)
                continue
            if not row["is_lead"]:
                continue  # a mere visitor
            found = contribution(
                lead_id,
                entered={
                    stage: at
                    for stage in FUNNEL_ENTERED
                    if (at := instant(row[f"became_{stage}_at"])) is not None
                },
                campaign=row["acquisition_campaign"],
                channel=row["acquisition_channel"],
                revenue=revenue[lead_id],
            )
            if found is not None:
                contributions.append(found)
    return contributions, merged


def rebuild(tx: Transaction, slot: Slot) -> None:
    """Count the totals again from every lead row of the slot (they must be empty)."""
    lead_ids = [
        str(lead_id) for (lead_id,) in tx.rows(f"SELECT lead_id FROM lifecycle_leads_{slot}")
    ]
    update(tx, slot, [], read_contributions(tx, slot, lead_ids)[0])


def update(
    tx: Transaction, slot: Slot, removed: Iterable[Contribution], added: Iterable[Contribution]
) -> None:
    """Take some contributions back and add others, in the totals and the step days."""
    counts: dict[Group, list[int]] = defaultdict(lambda: [0] * len(COUNTS))
    revenue: dict[tuple[Group, str], list[int]] = defaultdict(lambda: [0, 0])
    gone: list[str] = []
    days: list[tuple[object, ...]] = []
    for sign, contributions in ((-1, removed), (1, added)):
        for c in contributions:
            totals = counts[c.group]
            for i, n in enumerate(c.counts):
                totals[i] += sign * n
            for currency, amount in c.revenue.items():
                money = revenue[c.group, currency]
                money[0] += sign * amount
                money[1] += sign
            if sign < 0:
                gone.append(c.lead_id)
            else:
                days.extend(
                    (c.lead_id, step, c.acquired_at, *c.group[1:], d) for step, d in c.days.items()
                )
    columns = ", ".join(COUNTS)
    tx.executemany(
        f"INSERT INTO lifecycle_funnel_{slot} "
        f"(acquired_on, campaign, channel, acquired_month, {columns}) "
        f"VALUES (?, ?, ?, ?, {', '.join('?' * len(COUNTS))}) "
        "ON CONFLICT (acquired_on, campaign, channel) DO UPDATE SET "
        + ", ".join(f"{c} = lifecycle_funnel_{slot}.{c} + excluded.{c}" for c in COUNTS),
        [(*group, _month(group), *totals) for group, totals in counts.items() if any(totals)],
    )
    tx.executemany(
        f"INSERT INTO lifecycle_funnel_revenue_{slot} "
        "(acquired_on, campaign, channel, acquired_month, currency, amount_minor, leads) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (acquired_on, campaign, channel, currency) DO UPDATE SET "
        f"amount_minor = lifecycle_funnel_revenue_{slot}.amount_minor + excluded.amount_minor, "
        f"leads = lifecycle_funnel_revenue_{slot}.leads + excluded.leads",
        [
            (*group, _month(group), currency, *money)
            for (group, currency), money in revenue.items()
            if any(money)
        ],
    )
    # A group no live lead is in any more has no row (as a replay would build it).
    tx.execute(f"DELETE FROM lifecycle_funnel_{slot} WHERE reached_lead = 0")
    tx.execute(f"DELETE FROM lifecycle_funnel_revenue_{slot} WHERE leads = 0")
    for start in range(0, len(gone), 500):
        chunk = gone[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        tx.execute(f"DELETE FROM lifecycle_stage_days_{slot} WHERE lead_id IN ({marks})", chunk)
    tx.executemany(
        f"INSERT INTO lifecycle_stage_days_{slot} "
        "(lead_id, step, acquired_at, campaign, channel, days) VALUES (?, ?, ?, ?, ?, ?)",
        days,
    )


def _month(group: Group) -> str:
    return group[0].strftime("%Y-%m")
