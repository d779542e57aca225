"""The read-only JSON API under ``/api``: leads, their timelines, and what dashboards plot.

Lists and aggregates read the view tables; a single lead is folded from the event store at
``as_of`` (default now), so a past ``as_of`` is time travel with the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from uuid import UUID

from litestar import Router, get
from litestar.datastructures import State
from litestar.params import PathParameter, QueryParameter

from lifecycle.api import answers
from lifecycle.api.parameters import (
    BAD_REQUEST,
    NO_TOKEN,
    api_of,
    instant_parameter,
    one_of,
    problem_spec,
    read_choice,
    read_instant,
)
from lifecycle.api.problems import PATTERN_REASONS, ProblemError, bad_parameter
from lifecycle.api.state import Api
from lifecycle.contracts import changes
from lifecycle.contracts.inbound import ID_PATTERN, SPACE
from lifecycle.domain.identity import IdentityKey, IdentityKind
from lifecycle.domain.vocabulary import CHANNELS, Stage, Temperature
from lifecycle.errors import LeadNotFoundError
from lifecycle.ledger.report import LeadReport, lead_report
from lifecycle.projections import outbox, queries

MAX_PAGE = 500
MAX_SLA_HOURS = 24 * 90
STAGES: Final = tuple(stage.value for stage in Stage)
TEMPERATURES: Final = tuple(temperature.value for temperature in Temperature)
GROUPINGS: Final = ("campaign", "channel", "month")

# The kind in any case, as IdentityKey.parse reads it (JSON Schema's patterns have no flags).
_KINDS: Final = "|".join("".join(f"[{c}{c.upper()}]" for c in kind) for kind in IdentityKind)
IDENTITY_PATTERN: Final = rf"^({_KINDS}):[\s\S]*[^{SPACE}]"
_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# A cursor is where the previous page ended: its last score and lead id ((?!\n) for Python's $).
CURSOR_PATTERN: Final = rf"^(-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)_({_UUID})(?!\n)$"
_CURSOR: Final = re.compile(CURSOR_PATTERN)
PATTERN_REASONS.update(
    {
        IDENTITY_PATTERN: f"expected KIND:VALUE, KIND one of {', '.join(IdentityKind)}",
        CURSOR_PATTERN: "not a cursor this API gave out",
    }
)


AsOf = Annotated[str | None, instant_parameter("as_of", "The instant asked about (default now)")]
Campaign = Annotated[
    str | None,
    QueryParameter(
        pattern=ID_PATTERN, max_length=512, description="A campaign id (as producers send it)."
    ),
]


NO_LEAD: Final = {404: problem_spec("No lead has this id or identity.")}


AcquiredThrough = Annotated[str | None, one_of(CHANNELS, "Leads acquired through this channel")]


def _lead(api: Api, reference: UUID | IdentityKey, as_of: datetime | None) -> LeadReport:
    try:
        if isinstance(reference, UUID):
            lead = api.engine.get_lead(reference)
        else:
            found = api.engine.find_lead(reference)
            if found is None:
                raise ProblemError(404, f"no lead has this {reference.kind} identity")
            lead = api.engine.get_lead(found)
    except LeadNotFoundError:
        # Never the identity itself: problems may end up in logs.
        raise ProblemError(404, "no such lead") from None
    return lead_report(api.engine, lead, as_of=as_of)


def _lead_answer(report: LeadReport) -> answers.Lead:
    return answers.Lead(
        lead_id=report.lead_id,
        as_of=report.as_of,
        rules_version=report.rules_version,
        stage=report.stage.value if report.stage else None,
        temperature=report.temperature.value if report.temperature else None,
        score=answers.Score(total=report.score, fit=report.fit, engagement=report.engagement),
        became=report.became,
        hot_until=report.hot_until,
        warm_until=report.warm_until,
        acquisition=answers.Acquisition(
            campaign=report.acquisition_campaign, channel=report.acquisition_channel
        ),
        revenue_minor=report.revenue,
        referrer_lead_id=report.referrer_lead_id,
        unsubscribed=report.unsubscribed,
        identities=report.identities,
        merged=report.absorbed,
    )


# One lead is folded from its facts in well under a millisecond: it is answered on the event
# loop, because handing it to a thread cost more than the read (4 clients, 100k touchpoints:
# p99 8.3 -> 5.0 ms). A lead with thousands of facts would hold the loop longer: snapshots,
# not a thread, are the answer then. The queries over the views below keep their thread.
@get("/leads/{lead_id:uuid}", sync_to_thread=False, responses=BAD_REQUEST | NO_TOKEN | NO_LEAD)
def get_lead(
    state: State, lead_id: Annotated[UUID, PathParameter()], as_of: AsOf = None
) -> answers.Lead:
    """A lead folded from its facts as of ``as_of`` (default now); merged ids give the survivor."""
    return _lead_answer(_lead(api_of(state), lead_id, read_instant("as_of", as_of)))


@get(
    "/leads/{lead_id:uuid}/timeline",
    sync_to_thread=False,
    responses=BAD_REQUEST | NO_TOKEN | NO_LEAD,
)
def get_timeline(
    state: State, lead_id: Annotated[UUID, PathParameter()], as_of: AsOf = None
) -> answers.Timeline:
    """The lead's facts in event-time order; each stage move names the fact that caused it."""
    report = _lead(api_of(state), lead_id, read_instant("as_of", as_of))
    return answers.Timeline(
        lead_id=report.lead_id,
        as_of=report.as_of,
        stage=report.stage.value if report.stage else None,
        why=_why(report),
        entries=report.timeline,
    )


def _why(report: LeadReport) -> str:
    if report.stage is None or not report.stage_history:
        return "no facts yet at that time"
    current = report.stage_history[-1]
    cause = next((e for e in report.timeline if e.fact_id == current.fact_id), None)
    what = f"{cause.what} ({cause.detail})" if cause and cause.detail else (cause and cause.what)
    return (
        f"{current.stage.value} since {current.entered_at:%Y-%m-%d %H:%M} UTC, "
        f"because of {what or 'fact ' + current.fact_id} (rules {report.rules_version})"
    )


def _cursor(text: str | None) -> tuple[float, str] | None:
    if text is None:
        return None
    found = _CURSOR.fullmatch(text)
    if found is None:
        raise bad_parameter("cursor", "not a cursor this API gave out")
    return float(found[1]), found[2]


def _next_cursor(rows: list[queries.LeadRow], limit: int) -> str | None:
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    return f"{last.score!r}_{last.lead_id}"


@get("/leads", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN | NO_LEAD)
def list_leads(  # noqa: PLR0913 (one argument per query parameter)
    state: State,
    *,
    identity: Annotated[
        str | None,
        QueryParameter(
            pattern=IDENTITY_PATTERN,
            description="KIND:VALUE, e.g. email:ann@example.com: that lead, not a page.",
        ),
    ] = None,
    stage: Annotated[str | None, one_of(STAGES, "Leads at this stage")] = None,
    temperature: Annotated[str | None, one_of(TEMPERATURES, "Leads this warm now")] = None,
    campaign: Campaign = None,
    channel: AcquiredThrough = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[
        str | None,
        QueryParameter(pattern=CURSOR_PATTERN, description="The next_cursor of the page before."),
    ] = None,
    as_of: Annotated[
        str | None,
        instant_parameter(
            "as_of",
            "With identity: the lead as of then; else the temperatures then (default now)",
        ),
    ] = None,
) -> answers.LeadPage | answers.Lead:
    """With ``identity=email:...``: that lead (as of ``as_of``). Else a page of leads by score.

    For a page, ``as_of`` is the instant of the temperatures (as for /temperature: the views
    keep each lead's latest timers, so a past instant sees them as they are now).
    """
    api = api_of(state)
    query = queries.LeadQuery(
        stage=read_choice("stage", stage, STAGES),
        temperature=read_choice("temperature", temperature, TEMPERATURES),
        campaign=campaign,
        channel=read_choice("channel", channel, CHANNELS),
        after=_cursor(cursor),
    )
    at = read_instant("as_of", as_of)
    if identity is not None:
        return _lead_answer(_lead(api, IdentityKey.parse(identity), at))
    with api.reading() as (views, tx):
        # One row more than asked: whether there is a next page at all.
        rows = queries.leads_page(
            tx, views.active_slot(tx), query, now=at or datetime.now(UTC), limit=limit + 1
        )
    return answers.LeadPage(leads=rows[:limit], next_cursor=_next_cursor(rows, limit))


@get("/funnel", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_funnel(
    state: State,
    campaign: Campaign = None,
    channel: AcquiredThrough = None,
    from_: Annotated[str | None, instant_parameter("from", "Acquired at or after")] = None,
    to: Annotated[str | None, instant_parameter("to", "Acquired before")] = None,
) -> queries.Funnel:
    """The funnel of leads acquired in [from, to), by campaign or channel if asked.

    A ``to`` at or before ``from`` is an empty period, and its funnel counts no lead: the
    document cannot tie two parameters together, so the API keeps to what it says.
    """
    read_choice("channel", channel, CHANNELS)
    since, until = read_instant("from", from_), read_instant("to", to)
    with api_of(state).reading() as (views, tx):
        return queries.funnel(
            tx, views.active_slot(tx), queries.Filters(campaign, channel, since, until)
        )


@get("/cost-per-lead", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_cost_per_lead(
    state: State,
    by: Annotated[str, one_of(GROUPINGS, "What a row is")] = "campaign",
) -> answers.CostAnswer:
    """Spend, leads, MQLs, SQLs, customers, CPL, cost per MQL/SQL/customer, revenue, ROI."""
    read_choice("by", by, GROUPINGS)
    with api_of(state).reading() as (views, tx):
        rows = queries.cost_per_lead(tx, views.active_slot(tx), by)  # type: ignore[arg-type]
    return answers.CostAnswer(by=by, rows=rows)


@get("/temperature", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_temperature(state: State, as_of: AsOf = None) -> answers.TemperatureAnswer:
    """Leads per temperature as of ``as_of`` (default now), read from the views' timers."""
    at = read_instant("as_of", as_of) or datetime.now(UTC)
    with api_of(state).reading() as (views, tx):
        counts = queries.temperature_counts(tx, views.active_slot(tx), at)
    totals = {t.value: 0 for t in Temperature}
    for (_, temperature), leads in counts.items():
        totals[temperature] += leads
    return answers.TemperatureAnswer(as_of=at, counts=totals)


@get("/groups", sync_to_thread=True, responses=NO_TOKEN)
def get_groups(state: State) -> answers.GroupsAnswer:
    """The campaigns and channels that acquired a lead or were paid for (the filters' values)."""
    with api_of(state).reading() as (views, tx):
        campaigns, channels = queries.groups(tx, views.active_slot(tx))
    return answers.GroupsAnswer(campaigns=campaigns, channels=channels)


@get("/referrals", sync_to_thread=True, responses=NO_TOKEN)
def get_referrals(state: State) -> answers.ReferralAnswer:
    """What each referring lead brought."""
    with api_of(state).reading() as (views, tx):
        return answers.ReferralAnswer(referrers=queries.referrals(tx, views.active_slot(tx)))


@get("/sla", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def get_sla(
    state: State,
    as_of: AsOf = None,
    hours: Annotated[
        int | None,
        QueryParameter(ge=1, le=MAX_SLA_HOURS, description="Default LIFECYCLE_SLA_HOURS."),
    ] = None,
) -> answers.SlaAnswer:
    """Sales-ready leads not contacted within ``hours`` (default LIFECYCLE_SLA_HOURS)."""
    api = api_of(state)
    now = read_instant("as_of", as_of) or datetime.now(UTC)
    within = hours or api.settings.sla_hours
    with api.reading() as (views, tx):
        found = queries.sla_breaches(tx, views.active_slot(tx), now, within=timedelta(hours=within))
    return answers.SlaAnswer(
        as_of=now,
        within_hours=within,
        breaches=[
            answers.Breach(
                lead_id=lead_id, stage=stage, sales_ready_at=ready, first_sales_touch_at=touched
            )
            for lead_id, stage, ready, touched in found
        ],
    )


CHANGE_TYPES: Final = tuple(t.__name__ for t in changes.CHANGE_TYPES)
MAX_SEQ: Final = 2**53  # JSON numbers are exact up to here (the outbox column holds 64 bits)


@get("/changes", sync_to_thread=True, responses=BAD_REQUEST | NO_TOKEN)
def list_changes(
    state: State,
    after: Annotated[
        int,
        QueryParameter(
            ge=0, le=MAX_SEQ, description="The next_after of the page before (0: the first)."
        ),
    ] = 0,
    type: Annotated[  # noqa: A002 (the parameter's documented name)
        str | None, one_of(CHANGE_TYPES, "Only changes of this type")
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 100,
    last: Annotated[
        int | None,
        QueryParameter(
            ge=1, le=MAX_PAGE, description="Instead: the newest this many, newest first."
        ),
    ] = None,
) -> answers.ChangePage:
    """The lifecycle changes the engine announced (as on lead.lifecycle), oldest first.

    With ``last``: what just happened, newest first (``after`` and ``limit`` do not apply).
    """
    kind = read_choice("type", type, CHANGE_TYPES)
    with api_of(state).reading() as (_, tx):
        if last is not None:
            found = outbox.latest(tx, last, kind=kind)
            limit = len(found)  # one page, no next
        else:
            found = outbox.after(tx, after, limit + 1, kind=kind)
    page = [
        answers.AnnouncedChange(
            seq=c.seq, id=c.id, type=c.type, data=changes.decode(c.type, c.data)
        )
        for c in found[:limit]
    ]
    return answers.ChangePage(changes=page, next_after=page[-1].seq if len(found) > limit else None)


def api_router(
    guards: list[Any], *, security: list[dict[str, list[str]]], extra: Sequence[Any] = ()
) -> Router:
    """Every ``/api`` route (and ``extra`` ones), behind ``guards`` (documented as ``security``)."""
    return Router(
        path="/api",
        guards=guards,
        security=security,
        route_handlers=[
            get_lead,
            get_timeline,
            list_leads,
            get_funnel,
            get_cost_per_lead,
            get_temperature,
            get_groups,
            get_referrals,
            get_sla,
            list_changes,
            *extra,
        ],
    )
