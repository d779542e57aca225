"""Questions dashboards ask of the views: cost per lead, funnel, temperature, referrals, SLA.

Cost per lead, funnel counts and referrals are also SQL views (``schema.view_bodies``), so that
Grafana or Metabase read the same numbers; what depends on "now" or needs medians is computed
here, from the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from lifecycle.projections.schema import (
    FUNNEL,
    FUNNEL_COUNTS,
    FUNNEL_ENTERED,
    STAGES,
    STEP_NAMES,
    STEPS,
    cost_per_lead_sql,
    instant,
    live_leads,
    referrals_sql,
)
from lifecycle.projections.sql import Slot, Transaction

By = Literal["campaign", "channel", "month"]


@dataclass
class CostRow:
    """One row of cost per lead (amounts in minor units of ``currency``)."""

    group: str
    currency: str
    spend_minor: int
    leads: int
    mqls: int
    sqls: int
    customers: int
    revenue_minor: int
    cpl: float | None
    cost_per_mql: float | None
    cost_per_sql: float | None
    cost_per_customer: float | None
    roi: float | None


def cost_per_lead(tx: Transaction, slot: Slot, by: By = "campaign") -> list[CostRow]:
    """Cost per lead and its companions, per group and currency, ordered by group."""
    rows = tx.rows(f"SELECT * FROM ({cost_per_lead_sql(slot, by)}) q ORDER BY 1, 2")
    return [
        CostRow(
            group=str(r[0]),
            currency=r[1],
            spend_minor=int(r[2]),
            leads=int(r[3]),
            mqls=int(r[4]),
            sqls=int(r[5]),
            customers=int(r[6]),
            revenue_minor=int(r[7]),
            cpl=_float(r[8]),
            cost_per_mql=_float(r[9]),
            cost_per_sql=_float(r[10]),
            cost_per_customer=_float(r[11]),
            roi=_float(r[12]),
        )
        for r in rows
    ]


@dataclass
class Referral:
    """What one referring lead brought (revenue in ``currency``, if any)."""

    referrer_lead_id: str
    referred: int
    became_customers: int
    revenue_minor: int
    currency: str | None


def groups(tx: Transaction, slot: Slot) -> tuple[list[str], list[str]]:
    """The campaigns and the channels that acquired a lead or were paid for, each sorted."""

    def names(acquired: str, spent: str) -> list[str]:
        rows = tx.rows(
            f"SELECT {acquired} FROM lifecycle_funnel_{slot} WHERE {acquired} <> '' "
            f"UNION SELECT {spent} FROM lifecycle_spend_{slot} ORDER BY 1"
        )
        return [str(name) for (name,) in rows]

    return names("campaign", "campaign_id"), names("channel", "channel")


def referrals(tx: Transaction, slot: Slot) -> list[Referral]:
    """Per referring lead: leads referred, how many became customers, their revenue."""
    return [
        Referral(str(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4])
        for r in tx.rows(f"SELECT * FROM ({referrals_sql(slot)}) q ORDER BY 1")
    ]


@dataclass
class Funnel:
    """How many leads of a group reached each stage, conversions and median days between."""

    reached: dict[str, int]
    conversion: dict[str, float | None]
    median_days: dict[str, float | None]
    revenue_minor: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """Which leads a question is about: acquired by a campaign or channel, in a period."""

    campaign: str | None = None
    channel: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def funnel(tx: Transaction, slot: Slot, filters: Filters = Filters()) -> Funnel:
    """The funnel of leads acquired (became a lead) in a period, optionally by campaign/channel.

    Whole days are summed from the totals the views keep per acquisition day; only the part
    days at the ends of a period that does not start or end at midnight (UTC) are counted
    from the lead rows. Medians read the one or two middle rows of each step, in index order.
    """
    counts, revenue = _whole_days(tx, slot, filters)
    for part in _part_days(filters):
        more, more_revenue = _counted(tx, slot, part)
        counts = [a + b for a, b in zip(counts, more, strict=True)]
        for currency, amount in more_revenue.items():
            revenue[currency] = revenue.get(currency, 0) + amount
    totals = dict(zip(FUNNEL_COUNTS, counts, strict=True))
    reached = {stage: totals[f"reached_{stage}"] for stage in FUNNEL}
    conversion: dict[str, float | None] = {}
    medians: dict[str, float | None] = {}
    for (before, after), name in zip(STEPS, STEP_NAMES, strict=True):
        conversion[name] = reached[after] / reached[before] if reached[before] else None
        medians[name] = _median_days(tx, slot, name, filters, count=totals[name])
    return Funnel(reached, conversion, medians, revenue)


def _whole_days(tx: Transaction, slot: Slot, filters: Filters) -> tuple[list[int], dict[str, int]]:
    """Totals of the whole (UTC) days of the period, from the kept totals."""
    where, params = _groups(filters, campaign="campaign", channel="channel")
    first, last = _day_range(filters)
    if first is not None:
        where.append("acquired_on >= ?")
        params.append(first)
    if last is not None:
        where.append("acquired_on < ?")
        params.append(last)
    if first is not None and last is not None and first >= last:
        return [0] * len(FUNNEL_COUNTS), {}
    condition = " AND ".join(where)
    (row,) = tx.rows(
        f"SELECT {', '.join(f'SUM({c})' for c in FUNNEL_COUNTS)} "
        f"FROM lifecycle_funnel_{slot} WHERE {condition}",
        params,
    )
    revenue = tx.rows(
        f"SELECT currency, SUM(amount_minor) FROM lifecycle_funnel_revenue_{slot} "
        f"WHERE {condition} GROUP BY currency",
        params,
    )
    return [int(n or 0) for n in row], {c: int(v) for c, v in revenue}


def _day_range(filters: Filters) -> tuple[date | None, date | None]:
    """The first whole day in the period, and the day after its last whole day."""
    first = last = None
    if filters.since is not None:
        since = filters.since.astimezone(UTC)
        first = since.date() if since == _midnight(since) else since.date() + timedelta(days=1)
    if filters.until is not None:
        last = filters.until.astimezone(UTC).date()
    return first, last


def _part_days(filters: Filters) -> list[Filters]:
    """The parts of days at the ends of the period (those not summed from the totals)."""
    first, last = _day_range(filters)
    since, until = filters.since, filters.until
    if first is not None and last is not None and first >= last:
        return [filters]  # within one day, or two part days with none whole between them
    parts = []
    if since is not None and first is not None and _midnight(since) != since:
        parts.append(replace(filters, until=_midnight(since) + timedelta(days=1)))
    if until is not None and last is not None and _midnight(until) != until:
        parts.append(replace(filters, since=_midnight(until)))
    return parts


def _midnight(at: datetime) -> datetime:
    return datetime.combine(at.astimezone(UTC).date(), datetime.min.time(), UTC)


def _counted(tx: Transaction, slot: Slot, filters: Filters) -> tuple[list[int], dict[str, int]]:
    """Totals counted from the lead rows acquired in the period (an index finds them)."""
    where, params = _groups(
        filters,
        campaign="acquisition_campaign",
        channel="acquisition_channel",
        acquired="became_lead_at",
    )
    condition = " AND ".join(where)
    both = [f"{_REACHED[a]} IS NOT NULL AND {_REACHED[b]} IS NOT NULL" for a, b in STEPS]
    (row,) = tx.rows(
        "SELECT "
        + ", ".join(f"COUNT({_REACHED[stage]})" for stage in FUNNEL)
        + "".join(f", SUM(CASE WHEN {pair} THEN 1 ELSE 0 END)" for pair in both)
        + f" FROM {live_leads(slot)} x WHERE {condition}",
        params,
    )
    revenue = tx.rows(
        f"SELECT v.currency, SUM(v.amount_minor) FROM {live_leads(slot)} x "
        f"JOIN lifecycle_lead_revenue_{slot} v ON v.lead_id = x.lead_id "
        f"WHERE {condition} GROUP BY v.currency",
        params,
    )
    return [int(n or 0) for n in row], {c: int(v) for c, v in revenue}


def _groups(
    filters: Filters, *, campaign: str, channel: str, acquired: str | None = None
) -> tuple[list[str], list[object]]:
    """Conditions (and their values) for the filters' campaign, channel and period.

    The period applies when the rows have their acquisition instant in column ``acquired``.
    """
    conditions: list[tuple[str, object]] = [
        (f"{campaign} = ?", filters.campaign),
        (f"{channel} = ?", filters.channel),
    ]
    if acquired is not None:
        conditions += [(f"{acquired} >= ?", filters.since), (f"{acquired} < ?", filters.until)]
    where: list[str] = ["1 = 1"]
    params: list[object] = []
    for condition, value in conditions:
        if value is not None:
            where.append(condition)
            params.append(value)
    return where, params


# When a view row reached each funnel stage (sales-ready: the earlier of sql and pql).
_REACHED = {
    **{stage: f"became_{stage}_at" for stage in FUNNEL_ENTERED},
    "sales_ready": "CASE WHEN became_sql_at IS NULL THEN became_pql_at "
    "WHEN became_pql_at IS NULL OR became_sql_at < became_pql_at THEN became_sql_at "
    "ELSE became_pql_at END",
}


def _median_days(
    tx: Transaction, slot: Slot, step: str, filters: Filters, *, count: int
) -> float | None:
    """The median of the days a step took, over the ``count`` leads of the period that made it."""
    if not count:
        return None
    where, params = _groups(filters, campaign="campaign", channel="channel", acquired="acquired_at")
    where.append("step = ?")
    params.append(step)
    middle = tx.rows(
        f"SELECT days FROM lifecycle_stage_days_{slot} WHERE {' AND '.join(where)} "
        "ORDER BY days LIMIT ? OFFSET ?",
        [*params, 2 - count % 2, (count - 1) // 2],
    )
    return sum(float(days) for (days,) in middle) / len(middle)


# The temperature of a view row at an instant (two ``?``: the instant, twice).
TEMPERATURE_SQL = (
    "CASE WHEN hot_until > ? THEN 'hot' WHEN warm_until > ? THEN 'warm' ELSE 'cold' END"
)
LEAD_COLUMNS = (
    "lead_id",
    "stage",
    "score",
    "fit",
    "engagement",
    "acquisition_campaign",
    "acquisition_channel",
    "first_fact_at",
    "last_touch_at",
    "hot_until",
    "warm_until",
    "referrer_lead_id",
    *(f"became_{stage}_at" for stage in STAGES),
)


@dataclass
class LeadRow:
    """A lead as the views hold it, with its temperature at the instant asked about."""

    lead_id: str
    stage: str
    temperature: str
    score: float
    fit: int
    engagement: float
    acquisition_campaign: str | None
    acquisition_channel: str | None
    first_fact_at: datetime | None
    last_touch_at: datetime | None
    hot_until: datetime | None
    warm_until: datetime | None
    referrer_lead_id: str | None
    became: dict[str, datetime]


@dataclass(frozen=True)
class LeadQuery:
    """Which leads to list, and where the previous page ended (its last score and lead id)."""

    stage: str | None = None
    temperature: str | None = None
    campaign: str | None = None
    channel: str | None = None
    after: tuple[float, str] | None = None


def leads_page(
    tx: Transaction, slot: Slot, query: LeadQuery, *, now: datetime, limit: int
) -> list[LeadRow]:
    """Leads by score (highest first, then lead id): one keyset page of at most ``limit``."""
    # A lead whose first fact came after ``now`` was not there yet (as temperature_counts).
    where: list[str] = ["first_fact_at <= ?"]
    params: list[object] = [now, now, now]
    for column, value in (
        ("stage", query.stage),
        ("acquisition_campaign", query.campaign),
        ("acquisition_channel", query.channel),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.temperature is not None:
        where.append(f"{TEMPERATURE_SQL} = ?")
        params.extend([now, now, query.temperature])
    if query.after is not None:
        score, lead_id = query.after
        where.append("(score < ? OR (score = ? AND lead_id > ?))")
        params.extend([score, score, lead_id])
    rows = tx.rows(
        f"SELECT {TEMPERATURE_SQL}, {', '.join(LEAD_COLUMNS)} FROM {live_leads(slot)} x "
        f"WHERE {' AND '.join(where)} ORDER BY score DESC, lead_id LIMIT ?",
        [*params, limit],
    )
    return [_lead_row(row) for row in rows]


def _lead_row(row: tuple[object, ...]) -> LeadRow:
    temperature, lead_id, stage, score, fit, engagement, campaign, channel, *rest = row
    first_fact_at, last_touch_at, hot_until, warm_until, referrer, *became = rest
    return LeadRow(
        lead_id=str(lead_id),
        stage=str(stage),
        temperature=str(temperature),
        score=float(score),  # type: ignore[arg-type]
        fit=int(fit),  # type: ignore[call-overload]
        engagement=float(engagement),  # type: ignore[arg-type]
        acquisition_campaign=campaign,  # type: ignore[arg-type]
        acquisition_channel=channel,  # type: ignore[arg-type]
        first_fact_at=instant(first_fact_at),
        last_touch_at=instant(last_touch_at),
        hot_until=instant(hot_until),
        warm_until=instant(warm_until),
        referrer_lead_id=None if referrer is None else str(referrer),
        became={
            stage_name: at
            for stage_name, value in zip(STAGES, became, strict=True)
            if (at := instant(value)) is not None
        },
    )


def temperature_counts(
    tx: Transaction, slot: Slot, at: datetime, *, by: str | None = None
) -> dict[tuple[str, str], int]:
    """Leads per (group, temperature) as of ``at``, from the rows alone (no timers)."""
    group = {"stage": "stage", "campaign": "acquisition_campaign"}.get(by or "", "'all'")
    rows = tx.rows(
        f"SELECT {group}, {TEMPERATURE_SQL} AS temperature, COUNT(*) FROM {live_leads(slot)} x "
        "WHERE first_fact_at <= ? GROUP BY 1, 2",
        [at, at, at],
    )
    return {(str(g), t): int(n) for g, t, n in rows}


def sla_breaches(
    tx: Transaction, slot: Slot, now: datetime, *, within: timedelta
) -> list[tuple[str, str, datetime, datetime | None]]:
    """Sales-ready leads with no sales touch within ``within``: (lead, stage, ready, touched)."""
    rows = tx.rows(
        f"SELECT lead_id, stage, sales_ready_at, sales_touch_at FROM {live_leads(slot)} x "
        "WHERE sales_ready_at IS NOT NULL ORDER BY sales_ready_at"
    )
    breaches = []
    for lead_id, stage, ready, touched in rows:
        ready_at, touched_at = instant(ready), instant(touched)
        assert ready_at is not None  # noqa: S101 (filtered above)
        if ready_at > now:
            continue
        # A touch after ``now`` had not happened yet at ``now``.
        touched_at = touched_at if touched_at is not None and touched_at <= now else None
        deadline = ready_at + within
        if (touched_at is None and now > deadline) or (touched_at and touched_at > deadline):
            breaches.append((lead_id, stage, ready_at, touched_at))
    return breaches


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
