"""The views through the real broker: known answers, a killed worker, replays that agree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import msgspec
import pytest
import scenario
from kafka_testing import read_topic, running, structured, wait_for
from seeding import table_rows

from consumers.relay import Relay
from consumers.touchpoints import TouchpointIngest
from consumers.views import KafkaLeadEvents, ViewsWorker
from lifecycle import wiring
from lifecycle.demo.sample import generate
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections import queries
from lifecycle.projections.replay import fill_from_log, fill_from_store
from lifecycle.projections.schema import SLOT_TABLES, instant
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook

RULES = default_rulebook()


@pytest.fixture
def apps(settings):
    opened = [wiring.engine_at(settings.database_url) for _ in range(3)]
    yield opened
    for app in opened:
        app.close()


@pytest.fixture
def store(settings):
    views = ViewStore(settings.views_database_url)
    views.setup()
    yield views
    views.close()


def dump(store: ViewStore, slot: str) -> dict[str, list[tuple]]:
    """Every row of a slot's views (offsets aside), for comparing two builds."""
    with store.transaction() as tx:
        return {
            table: table_rows(tx, f"{table}_{slot}")
            for table in SLOT_TABLES
            if table != "lifecycle_offsets"
        }


def live_slot(store: ViewStore) -> str:
    with store.transaction() as tx:
        return store.active_slot(tx)


def lead_count(store: ViewStore) -> int:
    with store.transaction() as tx:
        return int(tx.value(f"SELECT COUNT(*) FROM {queries.live_leads(store.active_slot(tx))} x"))


def test_the_scripted_history_through_the_broker_yields_the_hand_computed_views(
    settings, produce, events, apps, store
):
    # One key keeps the script's order: a referral must come after its referrer (see the note
    # in tests/scenario.py).
    produce([(b"script", *structured(event)) for event in scenario.history(events)])
    ingest_app, relay_app, reader = apps
    workers = [
        TouchpointIngest(engine=ingest_app, settings=settings),
        Relay(engine=relay_app, settings=settings),
        ViewsWorker(store=ViewStore(settings.views_database_url), rules=RULES, settings=settings),
    ]
    with running(workers[0]), running(workers[1]), running(workers[2]):
        wait_for(lambda: lead_count(store) == 31, what="31 leads in the views")
        wait_for(
            lambda: (
                _cost_rows(store).keys() == scenario.EXPECTED_CPL.keys()
                and all(
                    r.spend_minor == scenario.EXPECTED_CPL[c]["spend_minor"]
                    for c, r in _cost_rows(store).items()
                )
            ),
            what="all spend in the views",
        )
        wait_for(lambda: _stages(store, reader) == _expected_stages(), what="the final stages")
    workers[2].store.close()

    for campaign, expected in scenario.EXPECTED_CPL.items():
        row = _cost_rows(store)[campaign]
        assert (row.leads, row.mqls, row.sqls, row.customers, row.revenue_minor) == (
            expected["leads"],
            expected["mqls"],
            expected["sqls"],
            expected["customers"],
            expected["revenue_minor"],
        ), campaign
        assert row.roi == pytest.approx(expected["roi"])
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        reached = queries.funnel(tx, slot).reached
        at_end = queries.temperature_counts(tx, slot, events.at(scenario.END_DAY))
    assert {stage: reached[stage] for stage in scenario.EXPECTED_FUNNEL} == scenario.EXPECTED_FUNNEL
    assert sum(at_end.values()) == 31
    _assert_temperatures_from_rows(store, reader, events)

    with contextlib.closing(KafkaLeadEvents(settings)) as log:
        from_kafka = fill_from_log(log, store, RULES)
    kafka_rows = dump(store, from_kafka)
    assert kafka_rows == dump(store, live_slot(store))
    from_store = fill_from_store(reader, store, RULES, settings)
    assert dump(store, from_store) == kafka_rows


def _assert_temperatures_from_rows(store: ViewStore, app: LeadLifecycle, events) -> None:
    """Each chosen instant after the lead's last fact: the row alone gives its temperature."""
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        rows = {
            lead_id: (instant(hot), instant(warm), instant(last))
            for lead_id, hot, warm, last in tx.rows(
                f"SELECT lead_id, hot_until, warm_until, last_fact_at FROM lifecycle_leads_{slot}"
            )
        }
    checked = 0
    for identity, day, expected in scenario.TEMPERATURE_CHECKS:
        hot, warm, last = rows[str(app.resolve(identity).id)]
        at = events.at(day)
        if last is not None and at >= last:
            temperature = "hot" if hot and at < hot else "warm" if warm and at < warm else "cold"
            assert temperature == expected, (identity, day)
            checked += 1
    assert checked >= 5


def _cost_rows(store: ViewStore) -> dict[str, queries.CostRow]:
    with store.transaction() as tx:
        return {row.group: row for row in queries.cost_per_lead(tx, store.active_slot(tx))}


def _stages(store: ViewStore, app: LeadLifecycle) -> dict[str, str]:
    with store.transaction() as tx:
        rows = dict(
            tx.rows(f"SELECT lead_id, stage FROM {queries.live_leads(store.active_slot(tx))} x")
        )
    return {
        identity: rows.get(str(app.resolve(identity).id), "?") for identity in _expected_stages()
    }


def _expected_stages() -> dict[str, str]:
    return {k: v for k, v in scenario.EXPECTED_STAGES.items() if v != "visitor"}


def test_a_projection_worker_killed_mid_stream_leaves_the_views_as_a_clean_replay_would(
    settings, produce, apps, store, tmp_path
):
    history = generate(people=150, days=30, seed=11)
    produce([(event["id"].encode(), msgspec.json.encode(event), []) for event in history])
    ingest_app, relay_app, reader = apps
    with running(TouchpointIngest(engine=ingest_app, settings=settings)):
        wait_for(
            lambda: _recorded(reader) >= len(history),
            what="every touchpoint recorded",
        )
    Relay(engine=relay_app, settings=settings).publish_pending()
    published = len(read_topic(settings.kafka_bootstrap, settings.lead_events_topic))
    env = {**os.environ, **settings.environment(), "LIFECYCLE_BATCH_SIZE": "20"}
    log = tmp_path / "project.log"
    with log.open("ab") as output:
        first = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "project"], env=env, stdout=output, stderr=output
        )
        wait_for(lambda: 0 < _applied(store) < published, what="the worker to get going")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "project"], env=env, stdout=output, stderr=output
        )
        try:
            wait_for(lambda: _applied(store) >= published, what="every lead event applied")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()

    live = dump(store, live_slot(store))
    clean = fill_from_store(reader, store, RULES, settings)
    assert live == dump(store, clean)


def _recorded(app: LeadLifecycle) -> int:
    return len(
        app.recorder.select_notifications(None, 10**7, topics=["lifecycle:Receipt.Created.v1"])
    )


def _applied(store: ViewStore) -> int:
    """Lead events applied so far: the sum over partitions of the last offset + 1."""
    with store.transaction() as tx:
        slot = store.active_slot(tx)
        value = tx.value(f"SELECT COALESCE(SUM(position + 1), 0) FROM lifecycle_offsets_{slot}")
    return int(value)
