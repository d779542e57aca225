"""Lifecycle changes out to lead.lifecycle, read back by another Kafka client (confluent-kafka).

The views worker announces into the outbox; the publisher sends it. Both are killed mid-stream
(SIGKILL of ``lifecycle project``, which runs the two) and restarted: nothing is lost, and
every repeat carries the id of the first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import replace
from datetime import datetime

import msgspec
import pytest
import scenario
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from kafka_testing import running, wait_for

from consumers.changes import ChangesPublisher
from consumers.relay import Relay
from consumers.views import ViewsWorker
from lifecycle import wiring
from lifecycle.contracts import changes
from lifecycle.demo.sample import generate
from lifecycle.projections import outbox
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def read_changes(bootstrap: str, topic: str, *, quiet_seconds: float = 2.0) -> list:
    """Every message on the topic, read by librdkafka (not by the engine's client)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found, quiet_since = [], time.monotonic()
        while time.monotonic() - quiet_since < quiet_seconds:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            found.append(message)
            quiet_since = time.monotonic()
        return found
    finally:
        consumer.close()


def outbox_changes(store: ViewStore) -> list[outbox.Stored]:
    with store.reading() as tx:
        return outbox.after(tx, 0, 10**7)


def published(store: ViewStore) -> int:
    with store.reading() as tx:
        return outbox.published(tx)[0]


def test_the_scenario_s_changes_reach_lead_lifecycle_once_each_in_order_per_lead_without_pii(
    settings, events
):
    engine = wiring.engine_at(settings.database_url)
    engine.record(events.decode(*scenario.history(events)))
    Relay(engine=engine, settings=settings).publish_pending()
    store = ViewStore(settings.views_database_url)
    store.setup()
    views = ViewsWorker(
        store=ViewStore(settings.views_database_url), rules=default_rulebook(), settings=settings
    )
    publisher = ChangesPublisher(store=ViewStore(settings.views_database_url), settings=settings)
    try:
        with running(views), running(publisher):
            wait_for(
                lambda: (
                    len(outbox_changes(store)) > 60
                    and published(store) == outbox_changes(store)[-1].seq
                ),
                what="the announced changes published",
            )
        stored = outbox_changes(store)
    finally:
        views.store.close()
        publisher.store.close()
        store.close()
        engine.close()

    messages = read_changes(settings.kafka_bootstrap, settings.changes_topic)
    assert len(messages) == len(stored)
    headers = [dict(m.headers()) for m in messages]
    assert {h["ce_id"].decode() for h in headers} == {s.id for s in stored}
    assert all(h["ce_specversion"] == b"1.0" for h in headers)
    assert all(h["ce_source"] == changes.SOURCE.encode() for h in headers)
    for message, header in zip(messages, headers, strict=True):
        change = changes.decode(header["ce_type"].decode(), message.value())
        assert message.key() == str(change.lead_id).encode()
        assert datetime.fromisoformat(header["ce_time"].decode()) == change.at
    order = {s.id: s.seq for s in stored}
    by_lead: dict[bytes, list[int]] = defaultdict(list)
    for message, header in zip(messages, headers, strict=True):
        by_lead[message.key()].append(order[header["ce_id"].decode()])
    assert all(seqs == sorted(seqs) for seqs in by_lead.values())
    text = b" ".join(m.value() for m in messages)
    assert b"@example.com" not in text
    assert scenario.OLI_PHONE.encode() not in text


def test_views_and_publisher_killed_mid_stream_lose_no_change_and_repeat_with_the_same_ids(
    settings, tmp_path
):
    engine = wiring.engine_at(settings.database_url)
    encode = msgspec.json.Encoder().encode
    from lifecycle.contracts import inbound  # noqa: PLC0415

    history = [inbound.decode_structured(encode(e)) for e in generate(people=150, seed=5)]
    for start in range(0, len(history), 500):
        engine.record(history[start : start + 500])
    Relay(engine=engine, settings=settings).publish_pending()
    engine.close()
    store = ViewStore(settings.views_database_url)
    store.setup()
    env = {**os.environ, **settings.environment(), "LIFECYCLE_BATCH_SIZE": "20"}
    log = tmp_path / "project.log"
    try:
        with log.open("ab") as output:
            first = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", "project"],
                env=env,
                stdout=output,
                stderr=output,
            )
            wait_for(lambda: published(store) > 50, what="some changes published")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            assert _applied(store) < _lead_events(settings), "killed after the stream, not in it"
            second = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", "project"],
                env=env,
                stdout=output,
                stderr=output,
            )
            try:
                wait_for(
                    lambda: (
                        _applied(store) >= _lead_events(settings)
                        and published(store) == outbox_changes(store)[-1].seq
                    ),
                    timeout=120,
                    what="every lead event applied and every change published",
                )
                # Stopped once it has started (a SIGTERM before the handlers are set kills it).
                wait_for(
                    lambda: log.read_text().count("changes_publisher_started") == 2,
                    what="the second process to have started",
                )
            finally:
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=60) == 0, log.read_text()
        stored = outbox_changes(store)
    finally:
        store.close()

    messages = read_changes(settings.kafka_bootstrap, settings.changes_topic)
    values: dict[str, set[bytes]] = defaultdict(set)
    for message in messages:
        values[dict(message.headers())["ce_id"].decode()].add(message.value())
    assert set(values) == {s.id for s in stored}
    assert all(len(v) == 1 for v in values.values()), "a repeat carried another value"
    assert len({s.id for s in stored}) == len(stored), "the outbox holds a change twice"


def _lead_events(settings) -> int:
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "counter"})
    try:
        metadata = consumer.list_topics(settings.lead_events_topic, timeout=10)
        total = 0
        for p in metadata.topics[settings.lead_events_topic].partitions:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(settings.lead_events_topic, p), timeout=10
            )
            total += high
        return total
    finally:
        consumer.close()


def _applied(store: ViewStore) -> int:
    with store.reading() as tx:
        slot = store.active_slot(tx)
        return int(tx.value(f"SELECT COALESCE(SUM(position + 1), 0) FROM lifecycle_offsets_{slot}"))


class Clock:
    """The views worker's "now", moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_an_idle_stream_announces_cooling_and_overdue_hand_offs_within_the_tick(settings, events):
    settings = replace(settings, tick_seconds=1)
    engine = wiring.engine_at(settings.database_url)
    engine.record(events.decode(*scenario.history(events)))
    Relay(engine=engine, settings=settings).publish_pending()
    store = ViewStore(settings.views_database_url)
    store.setup()
    clock = Clock(events.at(10.5))
    views = wiring.views_worker(
        settings, ViewStore(settings.views_database_url), default_rulebook(), clock=clock
    )
    try:
        with running(views):
            wait_for(lambda: _applied(store) >= _lead_events(settings), what="the views caught up")
            time.sleep(1.5)  # a tick at the same instant: nothing more
            before = len(outbox_changes(store))
            assert before > 0
            clock.now = events.at(scenario.END_DAY + 60)
            moved = time.monotonic()
            wait_for(
                lambda: any(s.type == "HandoffOverdue" for s in outbox_changes(store)[before:]),
                timeout=10,
                what="overdue hand-offs announced",
            )
            seen = time.monotonic() - moved
            time.sleep(1.5)
            every = outbox_changes(store)
    finally:
        views.store.close()
        store.close()

    # Within a few ticks with no input at all (how close to one tick is the bench's to say).
    assert seen < 3 * settings.tick_seconds + 1
    decoded = [changes.decode(s.type, s.data) for s in every]
    cooled = [c for c in decoded[before:] if isinstance(c, changes.TemperatureChanged)]
    assert cooled
    assert all(c.to.value == "cold" and c.cause == "time" for c in cooled)
    assert all(c.at < c.observed_at == clock.now for c in cooled)
    overdue = {
        engine.get_lead(c.lead_id).id for c in decoded if isinstance(c, changes.HandoffOverdue)
    }
    assert overdue == {engine.resolve(identity).id for identity in scenario.EXPECTED_SLA_OVERDUE}
    engine.close()
