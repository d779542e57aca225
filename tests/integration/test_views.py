"""The views, built from the event store, against answers computed by hand (tests/scenario.py).

Runs on SQLite and on PostgreSQL; the Kafka path is in tests/e2e/test_views_pipeline.py.
"""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec
import pytest
import scenario

from lifecycle.contracts import inbound
from lifecycle.demo.sample import generate
from lifecycle.domain.vocabulary import Stage
from lifecycle.projections import queries, schema
from lifecycle.projections.replay import fill_from_store, swap, what_if
from lifecycle.projections.schema import STAGES, instant
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook, load_rulebook
from lifecycle.settings import Settings


def lead_rows(store: ViewStore) -> dict[str, dict]:
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        names = [
            "lead_id",
            "stage",
            "hot_until",
            "warm_until",
            *(f"became_{stage}_at" for stage in STAGES),
        ]
        rows = tx.rows(f"SELECT {', '.join(names)} FROM {queries.live_leads(slot)} x")
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def test_every_lead_has_the_stage_and_stage_instants_computed_by_hand(views, engine, events):
    rows = lead_rows(views)
    leads = {k: v for k, v in scenario.EXPECTED_STAGES.items() if v != "visitor"}

    assert len(rows) == len(leads)
    for identity, stage in leads.items():
        assert rows[str(engine.resolve(identity).id)]["stage"] == stage, identity
    for identity, became in scenario.EXPECTED_BECAME.items():
        row = rows[str(engine.resolve(identity).id)]
        for stage, day in became.items():
            assert instant(row[f"became_{stage}_at"]) == events.at(day), (identity, stage)


def test_temperature_at_chosen_instants_comes_from_the_lead_row_alone(views, engine, events):
    rows = lead_rows(views)
    for identity, day, expected in scenario.TEMPERATURE_CHECKS:
        lead = engine.resolve(identity)
        at = events.at(day)
        view = engine.view(lead, as_of=at)
        assert view.temperature(at).value == expected, (identity, day)
        if view.last_fact_at == engine.view(lead).last_fact_at:  # the row is the lead's now
            row = rows[str(lead.id)]
            hot, warm = instant(row["hot_until"]), instant(row["warm_until"])
            from_row = "hot" if hot and at < hot else "warm" if warm and at < warm else "cold"
            assert from_row == expected, (identity, day)


def test_cost_per_lead_per_campaign_is_the_hand_computed_one(views):
    with views.transaction() as tx:
        rows = {row.group: row for row in queries.cost_per_lead(tx, views.active_slot(tx))}

    assert set(rows) == set(scenario.EXPECTED_CPL)
    for campaign, expected in scenario.EXPECTED_CPL.items():
        row = rows[campaign]
        for name, value in expected.items():
            got = getattr(row, name)
            assert got == (pytest.approx(value) if isinstance(value, float) else value), (
                campaign,
                name,
            )


def test_the_funnel_counts_every_live_lead_once(views):
    with views.transaction() as tx:
        result = queries.funnel(tx, views.active_slot(tx))

    for stage, count in scenario.EXPECTED_FUNNEL.items():
        assert result.reached[stage] == count, stage


@pytest.fixture
def generated(database_url, engine):
    """Views over 300 generated people (90 days, every kind of journey)."""
    history = [inbound.decode_structured(msgspec.json.encode(e)) for e in generate(people=300)]
    engine.record(history)
    store = ViewStore(database_url)
    settings = Settings(database_url=database_url)
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    yield store
    store.close()


def counted_from_rows(store: ViewStore, filters: queries.Filters) -> queries.Funnel:
    """The funnel counted lead by lead from the rows (what the kept totals must equal)."""
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        columns = ["lead_id", "acquisition_campaign", "acquisition_channel"]
        columns += [f"became_{s}_at" for s in ("lead", "mql", "sql", "pql", "customer")]
        rows = [
            dict(zip(columns, row, strict=True))
            for row in tx.rows(f"SELECT {', '.join(columns)} FROM {queries.live_leads(slot)} x")
        ]
        revenue = tx.rows(
            f"SELECT lead_id, currency, amount_minor FROM lifecycle_lead_revenue_{slot}"
        )
    chosen = {}
    for r in rows:
        at = {s: instant(r[f"became_{s}_at"]) for s in ("lead", "mql", "sql", "pql", "customer")}
        ready = [t for t in (at["sql"], at["pql"]) if t]
        at["sales_ready"] = min(ready) if ready else None
        if (
            filters.campaign in (None, r["acquisition_campaign"])
            and filters.channel in (None, r["acquisition_channel"])
            and (filters.since is None or at["lead"] >= filters.since)
            and (filters.until is None or at["lead"] < filters.until)
        ):
            chosen[r["lead_id"]] = at
    reached = {s: sum(1 for at in chosen.values() if at[s]) for s in queries.FUNNEL}
    days = {
        f"{a}_to_{b}": [
            (at[b] - at[a]) / timedelta(days=1) for at in chosen.values() if at[a] and at[b]
        ]
        for a, b in queries.STEPS
    }
    money: dict[str, int] = {}
    for lead_id, currency, amount in revenue:
        if lead_id in chosen:
            money[currency] = money.get(currency, 0) + int(amount)
    return queries.Funnel(
        reached=reached,
        conversion={
            f"{a}_to_{b}": reached[b] / reached[a] if reached[a] else None for a, b in queries.STEPS
        },
        median_days={k: statistics.median(v) if v else None for k, v in days.items()},
        revenue_minor=money,
    )


def test_funnel_medians_are_the_middle_of_the_days_between_stages(generated):
    expected = counted_from_rows(generated, queries.Filters())

    with generated.transaction() as tx:
        medians = queries.funnel(tx, generated.active_slot(tx)).median_days

    assert {reached % 2 for reached in expected.reached.values()} == {0, 1}  # both middles
    assert medians == pytest.approx(expected.median_days, abs=1e-9)


def test_the_funnel_of_any_period_campaign_and_channel_equals_one_counted_lead_by_lead(generated):
    rng = random.Random(4)  # noqa: S311
    start = min(instant(r["became_lead_at"]) for r in lead_rows(generated).values())
    midnight = datetime.combine(start.date(), datetime.min.time(), UTC)
    cases = [queries.Filters()]
    for _ in range(40):
        since = midnight + timedelta(
            days=rng.randrange(90), seconds=rng.choice([0, rng.randrange(86_400)])
        )
        until = since + timedelta(
            days=rng.randrange(3), seconds=rng.choice([0, rng.randrange(86_400)])
        )
        cases.append(
            queries.Filters(
                campaign=rng.choice([None, "2026q3-search-brand", "2026-seo-content", "none-such"]),
                channel=rng.choice([None, "paid_search", "organic_search", "direct"]),
                since=rng.choice([None, since]),
                until=rng.choice([None, until + timedelta(microseconds=1)]),
            )
        )

    for filters in cases:
        with generated.transaction() as tx:
            answer = queries.funnel(tx, generated.active_slot(tx), filters)

        expected = counted_from_rows(generated, filters)
        assert (answer.reached, answer.conversion, answer.revenue_minor) == (
            expected.reached,
            expected.conversion,
            expected.revenue_minor,
        ), filters
        assert answer.median_days == pytest.approx(expected.median_days, abs=1e-9), filters


def test_views_built_before_the_funnel_totals_get_them_counted_from_their_lead_rows(generated):
    with generated.transaction() as tx:
        slot = generated.active_slot(tx)
        expected = (queries.funnel(tx, slot), queries.cost_per_lead(tx, slot, "month"))
        for view in schema.view_bodies(slot):
            tx.execute(f"DROP VIEW {view}")
        for table in ("lifecycle_funnel", "lifecycle_funnel_revenue", "lifecycle_stage_days"):
            for old in ("a", "b"):
                tx.execute(f"DROP TABLE {table}_{old}")

    generated.setup()

    with generated.transaction() as tx:
        answer = (queries.funnel(tx, slot), queries.cost_per_lead(tx, slot, "month"))
    assert answer == expected
    assert expected[0].reached["customer"] > 0


def test_referrals_credit_the_referrers_even_when_the_referrals_arrive_first(
    database_url, engine, events
):
    history = scenario.history(events)
    referrals = [e for e in history if e["data"].get("kind") == "referral"]
    engine.record(events.decode(*referrals))  # before anything of the referrers
    engine.record(events.decode(*(e for e in history if e not in referrals)))
    store = ViewStore(database_url)
    rules = default_rulebook()
    swap(store, fill_from_store(engine, store, rules, Settings(database_url=database_url)), rules)
    with store.transaction() as tx:
        rows = queries.referrals(tx, store.active_slot(tx))
    store.close()

    assert_referrals_computed_by_hand(rows, engine)


def test_referrals_credit_the_referring_customers(views, engine):
    with views.transaction() as tx:
        rows = queries.referrals(tx, views.active_slot(tx))

    assert_referrals_computed_by_hand(rows, engine)


def assert_referrals_computed_by_hand(rows, engine) -> None:
    by_referrer = {row.referrer_lead_id: row for row in rows}
    assert len(rows) == len(scenario.EXPECTED_REFERRALS)
    for identity, expected in scenario.EXPECTED_REFERRALS.items():
        row = by_referrer[str(engine.resolve(identity).id)]
        assert (row.referred, row.became_customers, row.revenue_minor) == (
            expected["referred"],
            expected["became_customers"],
            expected["revenue_minor"],
        ), identity


def test_sales_ready_leads_without_a_sales_touch_in_24_hours_are_breaches(views, engine, events):
    with views.transaction() as tx:
        breaches = queries.sla_breaches(
            tx, views.active_slot(tx), events.at(scenario.END_DAY), within=timedelta(hours=24)
        )

    expected = {str(engine.resolve(identity).id) for identity in scenario.EXPECTED_SLA_OVERDUE}
    assert {lead_id for lead_id, *_ in breaches} == expected


def test_live_views_equal_the_time_travel_fold_of_every_lead(views, engine):
    for lead_id, row in lead_rows(views).items():
        view = engine.view(engine.get_lead(UUID(lead_id)))
        assert row["stage"] == view.stage.value
        for stage in STAGES:
            assert instant(row[f"became_{stage}_at"]) == view.became_at(Stage(stage))


def test_what_if_with_the_default_rules_reports_no_difference(views, engine, database_url, events):
    rules = default_rulebook()
    shadow = fill_from_store(engine, views, rules, Settings(database_url=database_url))

    report = what_if(views, shadow, rules, at=events.at(scenario.END_DAY), sla_hours=24)

    assert not report.differs
    assert report.leads == 31


def test_what_if_with_a_lower_mql_threshold_names_the_leads_that_would_become_mql(
    views, engine, database_url, events, tmp_path
):
    lower = tmp_path / "lower.toml"
    lower.write_text('rules_version = "lower"\n[stages]\nmql_score = 20\n')
    rules = load_rulebook(lower)
    shadow = fill_from_store(engine, views, rules, Settings(database_url=database_url))

    report = what_if(views, shadow, rules, at=events.at(scenario.END_DAY), sla_hours=24)

    assert report.differs
    assert report.gained["mql"] > 0
    assert report.lost["mql"] == 0
    with views.transaction() as tx:
        assert views.active_slot(tx) != shadow  # the live views were not touched
