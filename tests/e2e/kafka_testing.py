"""Helpers for end-to-end tests: CloudEvents in both Kafka modes, workers, waiting, reading."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from kafka import KafkaConsumer, TopicPartition


def structured(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A structured-mode message: the whole event as the value."""
    return msgspec.json.encode(event), [("content-type", b"application/cloudevents+json")]


def binary(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A binary-mode message: data as the value, attributes as ce_* headers."""
    headers = [
        (f"ce_{name}", str(value).encode()) for name, value in event.items() if name != "data"
    ]
    return msgspec.json.encode(event["data"]), [*headers, ("content-type", b"application/json")]


@contextmanager
def running(worker) -> Iterator[threading.Event]:
    """Run a worker in a thread for the duration of the block, then stop it cleanly."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def target() -> None:
        try:
            worker.run(stop)
        except BaseException as error:  # noqa: BLE001 (reported to the test below)
            failures.append(error)

    thread = threading.Thread(target=target, name=worker.name)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), f"{worker.name} did not stop"
    assert not failures, failures


def wait_for(condition: Callable[[], bool], *, timeout: float = 60, what: str = "it") -> None:
    """Poll until the condition holds, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def read_topic(bootstrap: str, topic: str, *, timeout_ms: int = 3000) -> list[Any]:
    """Every record now on a topic (all partitions, from the beginning)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)  # too low on the bundled broker: read past them
        records: list[Any] = []
        deadline = time.monotonic() + timeout_ms / 1000 * 5
        quiet = False
        while not quiet or any(consumer.position(tp) < ends[tp] for tp in partitions):
            batches = consumer.poll(timeout_ms=500)
            quiet = not batches
            for batch in batches.values():
                records.extend(batch)
            if time.monotonic() > deadline:
                break
        return records
    finally:
        consumer.close()
