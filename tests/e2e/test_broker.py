"""The bundled broker, started by the tests through the same code ``lifecycle broker`` uses."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from lifecycle.contracts.topics import ENGINE_TOPICS, TOUCHPOINTS
from lifecycle.demo.broker import BrokerError, LocalBroker, free_port


@pytest.fixture(scope="module")
def broker():
    with LocalBroker(port=free_port(), partitions=3) as local:
        yield local


def test_the_local_broker_creates_the_engine_topics_with_the_requested_partitions(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        described = admin.describe_topics(list(ENGINE_TOPICS))
    finally:
        admin.close()

    assert sorted(t["name"] for t in described) == sorted(ENGINE_TOPICS)
    assert {len(t["partitions"]) for t in described} == {3}


def test_a_message_round_trips_with_its_key_and_headers(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    sent = producer.send(TOUCHPOINTS, b"value", key=b"lead-1", headers=[("ce_id", b"e-1")]).get(10)
    producer.close()
    consumer = KafkaConsumer(
        bootstrap_servers=broker.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    consumer.assign([TopicPartition(TOUCHPOINTS, sent.partition)])
    records = consumer.poll(timeout_ms=5000)
    consumer.close()

    [message] = [m for batch in records.values() for m in batch]
    assert (message.key, message.value, message.headers) == (
        b"lead-1",
        b"value",
        [("ce_id", b"e-1")],
    )


def test_a_second_broker_on_a_taken_port_fails_with_a_clear_error(broker):
    with pytest.raises(BrokerError, match=f"port {broker.port} on 127.0.0.1 is already in use"):
        LocalBroker(port=broker.port).start(timeout=5)


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_lifecycle_broker_runs_in_the_foreground_until_interrupted(stop_with):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "broker", "--port", str(port), "--partitions", "2"],
        stderr=subprocess.PIPE,
    )
    try:
        banner = process.stderr.readline()
        assert f"broker listening on 127.0.0.1:{port}".encode() in banner
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        assert set(ENGINE_TOPICS) <= set(admin.list_topics())
        admin.close()
    finally:
        process.send_signal(stop_with)
        try:
            code = process.wait(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        process.stderr.close()

    assert code == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _listening(port):
        time.sleep(0.1)
    assert not _listening(port)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


# From the spawn of the broker to its topics: while `lifecycle broker` starts, a SIGTERM must
# stop the broker too (it runs in a session of its own, so nothing else would).
@pytest.mark.parametrize("delay", [0.6, 0.9, 1.2, 1.5])
def test_a_sigterm_while_lifecycle_broker_starts_leaves_no_broker_behind(delay):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "broker", "--port", str(port), "--partitions", "2"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _listening(port):
        time.sleep(0.1)
    assert not _listening(port)
