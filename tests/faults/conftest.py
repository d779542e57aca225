"""Fault injection: a broker of each test's own (to kill), clean runs to compare with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Message, Outcome, record_clean, stream

from lifecycle.broker import LocalBroker, free_port
from lifecycle.settings import Settings

PARTITIONS = 3


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, on a port of its own (tests kill and restart it)."""
    local = LocalBroker(port=free_port(), partitions=PARTITIONS)
    local.start()
    yield local
    local.stop()


def pipeline_settings(database_url: str, bootstrap: str, **overrides: object) -> Settings:
    """The engine's settings for a test: short group timeouts, JSON logs, small batches."""
    values: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap": bootstrap,
        "batch_size": 200,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> Callable[[list[Message]], Outcome]:
    """``clean_run(messages)``: the outcome of recording them in order (SQLite), remembered."""
    done: dict[int, Outcome] = {}

    def run(messages: list[Message]) -> Outcome:
        key = hash(tuple(messages))
        if key not in done:
            folder: Path = tmp_path_factory.mktemp("clean")
            done[key] = record_clean(f"sqlite:///{folder}/clean.db", messages)
        return done[key]

    return run


@pytest.fixture(scope="session")
def demo() -> list[Message]:
    """The input most fault tests use: 300 people of the demo generator (about 2,200 messages)."""
    return stream(300)
