"""The relay against the real broker: events recorded in the store end up on lead.events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka_testing import running, wait_for

from consumers.relay import Relay
from lifecycle import wiring
from lifecycle.contracts.lead_events import PUBLISHED_TOPICS, decode_lead_event, to_lead_event
from lifecycle.demo.broker import LocalBroker, free_port
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """\
import threading

from lifecycle import wiring
from lifecycle.settings import Settings

settings = Settings.from_env()
wiring.relay(settings, wiring.engine(settings)).run(threading.Event())
"""


@pytest.fixture
def sqlite_engine(sqlite_url):
    engine = wiring.engine_at(sqlite_url)
    yield engine
    engine.close()


def own_settings(bootstrap: str, database_url: str, **overrides) -> Settings:
    """Settings with a relay name and topic of their own."""
    suffix = uuid.uuid4().hex[:8]
    defaults = {"lead_events_topic": f"lead.events.{suffix}", "relay_name": f"relay-{suffix}"}
    return Settings(database_url=database_url, kafka_bootstrap=bootstrap, **(defaults | overrides))


def read_all(bootstrap: str, topic: str) -> list:
    """Every record on the topic, from the beginning of each partition.

    Polls until nothing more comes: the local broker's end offset points at the start of a
    partition's last batch, not past it, so reaching it does not mean everything was read.
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        ids = sorted(consumer.partitions_for_topic(topic) or [])
        partitions = [TopicPartition(topic, p) for p in ids]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            polled = [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
            records.extend(polled)
            if not polled and all(consumer.position(tp) >= ends[tp] for tp in partitions):
                return records
        pytest.fail(f"could not read {topic} to its end within 30 s")
    finally:
        consumer.close()


def headers(record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def ce_ids(records) -> list[str]:
    return [headers(record)["ce_id"] for record in records]


def expected_ce_ids(engine: LeadLifecycle) -> set[str]:
    """The ce_id of every event in the store that the relay publishes."""
    ids = set()
    for notification in engine.recorder.select_notifications(None, 1_000_000):
        message = to_lead_event(
            engine.mapper.to_domain_event(notification), published_properties=()
        )
        if message is not None:
            ids.add(message.ce_id)
    return ids


def record_people(engine: LeadLifecycle, events, people: int, *, touches: int = 1) -> None:
    decoded = events.decode(
        *(
            events.touchpoint("page_view", n / 100, email=f"person{i}@example.com")
            for n in range(touches)
            for i in range(people)
        )
    )
    for start in range(0, len(decoded), 500):
        engine.record(decoded[start : start + 500])


def test_recorded_events_are_published_with_lead_and_campaign_keys_and_cloudevent_headers(
    settings, open_engine, events
):
    engine = open_engine()
    engine.record(
        events.decode(
            events.touchpoint(
                "form_fill",
                0,
                email="ann@example.com",
                campaign={"id": "spring", "channel": "email"},
            ),
            events.qualification(1, email="ann@example.com"),
            events.spend("spring", 5000, day=2),
        )
    )

    published = Relay(engine=engine, settings=settings).publish_pending()

    records = read_all(settings.kafka_bootstrap, settings.lead_events_topic)
    lead = engine.resolve("email:ann@example.com").id
    campaign = engine.campaign("spring").id
    assert published == len(records) == 6
    assert {(r.key.decode(), headers(r)["ce_id"], headers(r)["ce_type"]) for r in records} == {
        (str(lead), f"{lead}:2", "lifecycle.lead.IdentifierAdded"),
        (str(lead), f"{lead}:3", "lifecycle.lead.FactRecorded"),
        (str(lead), f"{lead}:4", "lifecycle.lead.Captured"),
        (str(lead), f"{lead}:5", "lifecycle.lead.FactRecorded"),
        (str(campaign), f"{campaign}:1", "lifecycle.campaign.Created"),
        (str(campaign), f"{campaign}:2", "lifecycle.campaign.SpendRecorded"),
    }
    for record in records:
        assert headers(record)["ce_specversion"] == "1.0"
        assert headers(record)["content-type"] == "application/json"
        assert headers(record)["ce_source"] == "urn:lead-lifecycle:event-store"
    by_id = {headers(r)["ce_id"]: r for r in records}
    assert headers(by_id[f"{lead}:3"])["ce_time"] == "2026-03-02T09:00:00Z"
    assert headers(by_id[f"{campaign}:2"])["ce_time"] == "2026-03-04T09:00:00Z"
    assert decode_lead_event(by_id[f"{campaign}:2"].value).campaign_key == "spring"
    lead_records = sorted(
        (r for r in records if r.key == str(lead).encode()), key=lambda r: r.offset
    )
    assert len({r.partition for r in lead_records}) == 1
    assert [decode_lead_event(r.value).version for r in lead_records] == [2, 3, 4, 5]


def test_running_the_relay_again_publishes_only_what_was_recorded_since(
    settings, open_engine, events
):
    engine = open_engine()
    record_people(engine, events, 10)
    first = Relay(engine=engine, settings=settings).publish_pending()
    again = Relay(engine=engine, settings=settings).publish_pending()
    record_people(engine, events, 12)
    more = Relay(engine=engine, settings=settings).publish_pending()

    records = read_all(settings.kafka_bootstrap, settings.lead_events_topic)
    assert (first, again, more) == (30, 0, 16)
    assert len(records) == len(set(ce_ids(records))) == 46


def test_from_start_republishes_everything_in_a_new_epoch(settings, open_engine, events):
    engine = open_engine()
    record_people(engine, events, 20)
    relay = Relay(engine=engine, settings=settings)
    first = relay.publish_pending()
    position = relay.position()

    again = relay.publish_pending(from_start=True)

    records = read_all(settings.kafka_bootstrap, settings.lead_events_topic)
    assert first == again == 60
    assert len(records) == 120
    assert set(ce_ids(records)) == expected_ce_ids(engine)
    assert relay.position() == position
    assert engine.position(f"{settings.relay_name}:{settings.lead_events_topic}:epoch") == 1


def test_a_running_relay_publishes_new_events_and_stops_promptly(settings, open_engine, events):
    engine = open_engine()
    relay = Relay(engine=engine, settings=settings)
    topic = settings.lead_events_topic

    with running(relay):
        record_people(engine, events, 5)
        wait_for(
            lambda: len(read_all(settings.kafka_bootstrap, topic)) == 15,
            timeout=20,
            what="the relay to publish 15 events",
        )
        stopping = time.monotonic()
    stopped_within = time.monotonic() - stopping

    assert stopped_within < 2
    assert set(ce_ids(read_all(settings.kafka_bootstrap, topic))) == expected_ce_ids(engine)


@pytest.mark.parametrize("topic_on_new_broker", ["missing", "empty"])
def test_a_new_empty_broker_gets_lead_events_rebuilt_from_the_store(
    sqlite_engine, sqlite_url, events, topic_on_new_broker
):
    port = free_port()
    settings = own_settings(f"127.0.0.1:{port}", sqlite_url)
    topics = [settings.lead_events_topic] if topic_on_new_broker == "empty" else []
    record_people(sqlite_engine, events, 30)
    with LocalBroker(port=port, partitions=3):
        before = Relay(engine=sqlite_engine, settings=settings).publish_pending()

    with LocalBroker(port=port, partitions=3, topics=topics):
        rebuilt = Relay(engine=sqlite_engine, settings=settings).publish_pending()
        records = read_all(settings.kafka_bootstrap, settings.lead_events_topic)

    assert before == rebuilt == 90
    assert sorted(ce_ids(records)) == sorted(expected_ce_ids(sqlite_engine))


def test_a_relay_killed_mid_stream_and_restarted_publishes_every_event_at_least_once(
    broker, sqlite_engine, sqlite_url, events, tmp_path
):
    settings = own_settings(broker.bootstrap, sqlite_url, batch_size=25)
    record_people(sqlite_engine, events, 1500, touches=2)
    expected = expected_ce_ids(sqlite_engine)
    last = sqlite_engine.recorder.select_notifications(None, 1_000_000, topics=PUBLISHED_TOPICS)[
        -1
    ].id
    relay = Relay(engine=sqlite_engine, settings=settings)
    driver = tmp_path / "relay_driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, **settings.environment(), "PYTHONPATH": str(ROOT)}

    with (tmp_path / "relay.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, str(driver)], env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: relay.position() > last // 4, timeout=30, what="a quarter published")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    killed_at = relay.position()
    republished = relay.publish_pending()

    records = read_all(broker.bootstrap, settings.lead_events_topic)
    assert process.returncode == -signal.SIGKILL
    assert 0 < killed_at < last
    assert relay.position() == last
    assert len(expected) == 6000
    assert set(ce_ids(records)) == expected
    assert len(records) - len(expected) <= settings.batch_size
    assert 0 < republished < len(expected)
