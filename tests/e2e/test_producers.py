"""Producers that are not ours: librdkafka (confluent-kafka) with its settings, every codec."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from confluent_kafka import Producer
from kafka_testing import binary, running, structured, wait_for

from consumers.touchpoints import TouchpointIngest
from lifecycle import wiring
from lifecycle.adapters.eventstore import count_events

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 12


def produce_with_librdkafka(bootstrap: str, topic: str, codec: str, messages) -> None:
    """Send with confluent-kafka as a user would: its defaults, one compression type."""
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec})
    failures: list[str] = []

    def delivered(error, _message) -> None:
        if error is not None:
            failures.append(str(error))

    for key, value, headers in messages:
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=delivered)
    assert producer.flush(30) == 0, "messages left undelivered"
    assert not failures, failures


def test_touchpoints_from_librdkafka_in_every_codec_and_both_modes_are_recorded(settings, events):
    for codec in CODECS:
        messages = []
        for n in range(PER_CODEC):
            event = events.touchpoint(
                "page_view", n, email=f"{codec}-{n}@example.com", event_id=f"{codec}-{n}"
            )
            encode = structured if n % 2 else binary
            messages.append((f"{codec}-{n}".encode(), *encode(event)))
        produce_with_librdkafka(
            settings.kafka_bootstrap, settings.touchpoints_topic, codec, messages
        )
    app = wiring.engine_at(settings.database_url)
    reader = wiring.engine_at(settings.database_url)
    try:
        with running(TouchpointIngest(engine=app, settings=settings)):
            wait_for(
                lambda: (
                    count_events(reader.recorder, ["lifecycle:Receipt.Created.v1"])
                    == len(CODECS) * PER_CODEC
                ),
                what="every touchpoint of every codec",
            )
        for codec in CODECS:
            lead = reader.resolve(f"email:{codec}-0@example.com")
            assert [f.kind for f in lead.facts] == ["page_view"], codec
    finally:
        reader.close()
        app.close()


@pytest.mark.parametrize("codec", ["snappy", "lz4", "zstd"])
def test_kafka_python_reads_every_codec_librdkafka_writes(codec):
    from kafka import codec as codecs  # noqa: PLC0415 (what this test is about)

    assert getattr(codecs, f"has_{codec}")(), f"kafka-python cannot read {codec}"


def start_ingest(settings, log_path, **env):
    environment = {**os.environ, **settings.environment(), **env}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "ingest"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def logged(log_path, event: str) -> list[dict]:
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    return [entry for entry in map(json.loads, lines) if entry.get("event") == event]


def test_a_batch_in_a_codec_ingest_cannot_read_holds_its_partition_and_the_others_go_on(
    settings, events, tmp_path
):
    # An ingest without zstd: the library is hidden from it, as on a machine that lacks it.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "zstandard.py").write_text('raise ImportError("hidden by the test")\n')
    log = tmp_path / "ingest.log"
    reader = wiring.engine_at(settings.database_url)

    def receipts() -> int:
        return count_events(reader.recorder, ["lifecycle:Receipt.Created.v1"])

    def send(codec: str, partition: int, count: int) -> None:
        producer = Producer(
            {"bootstrap.servers": settings.kafka_bootstrap, "compression.type": codec}
        )
        for n in range(count):
            event = events.touchpoint("page_view", n, email=f"p{partition}-{n}@example.com")
            value, headers = structured(event)
            producer.produce(
                settings.touchpoints_topic, value=value, headers=headers, partition=partition
            )
        assert producer.flush(30) == 0

    send("zstd", 0, 5)
    send("none", 1, 5)
    send("lz4", 2, 5)
    try:
        blind = start_ingest(settings, log, PYTHONPATH=str(shadow))
        try:
            wait_for(lambda: receipts() == 10, what="the two readable partitions")
            wait_for(lambda: logged(log, "partition_held_undecodable"), what="the hold")
            assert blind.poll() is None, "ingest exited"
            [held] = logged(log, "partition_held_undecodable")
            assert held["partition"] == 0
            assert "UnsupportedCodecError" in held["error"]
        finally:
            blind.send_signal(signal.SIGTERM)
            assert blind.wait(timeout=60) == 0
        assert receipts() == 10
        # With the codec, the held partition goes on from its tracked position.
        seeing = start_ingest(settings, log)
        try:
            wait_for(lambda: receipts() == 15, what="the held partition's touchpoints")
        finally:
            seeing.send_signal(signal.SIGTERM)
            assert seeing.wait(timeout=60) == 0
    finally:
        reader.close()
