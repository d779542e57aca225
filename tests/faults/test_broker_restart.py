"""The broker dies mid-stream and comes back without its topics: nothing is lost."""

from __future__ import annotations

import sqlite3
import time

import pytest
from harness import (
    assert_same,
    decoded,
    fault_counts,
    outcome,
    pipeline_settings,
    produce,
    wait_for_outcome,
    wait_until,
    workers,
)

from consumers.dead_letters import read_dead_letters
from lifecycle import wiring
from lifecycle.adapters.eventstore import count_events
from lifecycle.demo.broker import LocalBroker, free_port
from lifecycle.projections.replay import fill_from_store
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 3
MALFORMED = (b"after-restart", b'{"specversion": "1.0", "id": "late-1"')


def test_a_broker_restarted_without_its_topics_mid_stream_loses_no_touchpoint(
    broker, database_url, demo, clean_run, tmp_path
):
    first, second = demo[: len(demo) // 2], [MALFORMED, *demo[len(demo) // 2 :]]
    want = clean_run(demo)
    metrics = free_port()
    settings = pipeline_settings(database_url, broker.bootstrap, metrics_port=metrics)
    engine = wiring.engine_at(database_url)
    views = ViewStore(database_url)
    first_receipts = len({(e.source, e.id) for e in decoded(first)})

    def receipts() -> int:
        return count_events(engine.recorder, ["lifecycle:Receipt.Created.v1"])

    def viewed() -> int:
        with views.reading() as tx:
            return int(tx.value("SELECT COUNT(*) FROM lifecycle_leads"))

    try:
        with workers() as start:
            run = start(settings, tmp_path / "run.log", "run")
            produce(broker.bootstrap, first)
            wait_until(
                lambda: receipts() >= first_receipts and viewed() > 0,
                timeout=120,
                what="the first half recorded, and the views under way",
            )
            broker.kill()  # in memory: the topics and everything on them are gone
            time.sleep(OUTAGE_SECONDS)  # the workers meet a broker that refuses connections
            restarted = LocalBroker(port=broker.port, partitions=broker.partitions)
            restarted.start()
            try:
                produce(restarted.bootstrap, second)
                wait_for_outcome(
                    engine,
                    views,
                    want,
                    timeout=180,
                    what="every touchpoint recorded once and the views caught up",
                )
                assert run.alive(), "lifecycle run exited"
                faults = fault_counts(metrics)
                letters = read_dead_letters(settings)
            finally:
                restarted.stop()
        assert_same(outcome(engine, views), want)
        # Told and counted: ingest noticed the new topic, and so did the views.
        told = {line.get("topic") for line in run.logged("topic_recreated_reading_from_start")}
        assert told == {settings.touchpoints_topic, settings.lead_events_topic}
        assert faults[("ingest", "topic_recreated")] >= 1
        assert faults[("views", "topic_recreated")] >= 1
        assert faults[("relay", "topic_recreated")] >= 1
        [epoch] = run.logged("relay_epoch_started")
        assert epoch["reason"] == "topic_recreated"
        # The dead-letter producer was made again for the new broker.
        assert MALFORMED[0] in {letter.key for letter in letters}
        # The live views equal a replay of the store.
        spare = fill_from_store(engine, views, default_rulebook(), settings)
        assert_same(outcome(engine, views, spare), want)
    finally:
        views.close()
        engine.close()


# On SQLite, whose lock makes the database refuse writers on purpose.
def test_batches_waiting_for_the_database_when_the_broker_loses_its_topics_are_still_recorded(
    broker, tmp_path, demo
):
    path = tmp_path / "locked.db"
    database_url = f"sqlite:///{path}?lock_timeout=1"
    messages = demo[:300]
    want = len({(e.source, e.id) for e in decoded(messages)})
    settings = pipeline_settings(database_url, broker.bootstrap, batch_size=1000)
    reader = wiring.engine_at(database_url)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with workers() as start:
            ingest = start(settings, tmp_path / "ingest.log", "ingest")
            wait_until(
                lambda: ingest.logged("partitions_located"), timeout=60, what="ingest to start"
            )
            holder.execute("BEGIN EXCLUSIVE")  # the database is away for writers
            # In one record batch per partition (the bundled broker hands out one per fetch):
            # the first poll brings every message, and every batch fails and waits.
            produce(broker.bootstrap, messages, linger_ms=1000, batch_size=4 * 1024 * 1024)
            wait_until(
                lambda: len(ingest.logged("batch_failed_will_retry")) >= 1,
                timeout=60,
                what="the batches to fail",
            )
            # ...when the broker dies and comes back empty: nobody can fetch them again.
            broker.kill()
            restarted = LocalBroker(port=broker.port, partitions=broker.partitions)
            restarted.start()
            try:
                wait_until(
                    lambda: (
                        ingest.logged("topic_id_changed")
                        or any(line["partitions"] for line in ingest.logged("partitions_revoked"))
                    ),
                    timeout=60,
                    what="ingest to meet the new broker",
                )
                holder.execute("ROLLBACK")
                wait_until(
                    lambda: count_events(reader.recorder, ["lifecycle:Receipt.Created.v1"]) == want,
                    timeout=90,
                    what="the batches kept aside to be recorded",
                )
                assert ingest.alive()
            finally:
                restarted.stop()
        assert any(line.get("orphan") for line in ingest.logged("batch_recorded"))
    finally:
        holder.close()
        reader.close()
