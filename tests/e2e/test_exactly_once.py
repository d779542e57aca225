"""Exactly once under crashes and scale-out: real processes, real broker, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from kafka_testing import structured, wait_for

from lifecycle import wiring
from lifecycle.aggregates import Lead, Receipt
from lifecycle.ledger.engine import LeadLifecycle

PEOPLE = 150
TOUCHES_EACH = 20  # 3,000 touchpoints in all


@pytest.fixture
def store(settings):
    app = wiring.engine_at(settings.database_url)
    yield app
    app.close()


def count_events(app: LeadLifecycle, event_class: type) -> int:
    topic = event_class.TOPIC
    return len(app.recorder.select_notifications(start=None, limit=10**7, topics=[topic]))


def start_ingest(settings, log_path):
    env = {**os.environ, **settings.environment(), "LIFECYCLE_BATCH_SIZE": "50"}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "ingest"], env=env, stdout=log, stderr=log
        )


def stop(process, sig=signal.SIGTERM) -> int:
    process.send_signal(sig)
    return process.wait(timeout=60)


@pytest.fixture
def stream(produce, events):
    """PEOPLE people with TOUCHES_EACH page views each, keyed by person."""
    messages = []
    for touch in range(TOUCHES_EACH):
        for person in range(PEOPLE):
            event = events.touchpoint(
                "page_view",
                touch / 10,
                email=f"p{person}@example.com",
                event_id=f"{person}-{touch}",
            )
            messages.append((f"p{person}".encode(), *structured(event)))
    produce(messages)
    return len(messages)


def test_an_ingest_killed_mid_stream_and_restarted_records_every_touchpoint_once(
    settings, stream, store, tmp_path
):
    log = tmp_path / "ingest.log"
    first = start_ingest(settings, log)
    wait_for(lambda: count_events(store, Receipt.Created) >= 300, what="ingest to get going")
    assert stop(first, signal.SIGKILL) == -signal.SIGKILL
    recorded_before_restart = count_events(store, Receipt.Created)
    assert recorded_before_restart < stream, "the kill came too late to prove anything"

    second = start_ingest(settings, log)
    try:
        wait_for(lambda: count_events(store, Receipt.Created) >= stream, what="every touchpoint")
    finally:
        assert stop(second) == 0

    assert count_events(store, Receipt.Created) == stream
    assert count_events(store, Lead.FactRecorded) == stream
    lead = store.resolve("email:p7@example.com")
    assert len(lead.facts) == len({f.fact_id for f in lead.facts}) == TOUCHES_EACH


def test_two_ingest_processes_in_one_group_split_the_partitions_and_record_everything_once(
    settings, stream, store, tmp_path
):
    logs = [tmp_path / "ingest-1.log", tmp_path / "ingest-2.log"]
    processes = [start_ingest(settings, log) for log in logs]
    try:
        wait_for(lambda: count_events(store, Receipt.Created) >= stream, what="every touchpoint")
    finally:
        codes = [stop(process) for process in processes]

    assert codes == [0, 0]
    assert count_events(store, Receipt.Created) == stream
    assert count_events(store, Lead.FactRecorded) == stream
    recorded_by = Counter()
    for index, log in enumerate(logs):
        for line in log.read_text().splitlines():
            if not line.startswith("{"):
                continue  # "stopped cleanly", for people
            entry = json.loads(line)
            if entry.get("event") == "batch_recorded":
                recorded_by[index] += entry["recorded"]
    assert recorded_by[0] > 0
    assert recorded_by[1] > 0
    assert recorded_by[0] + recorded_by[1] == stream
