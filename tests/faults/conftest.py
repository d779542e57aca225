"""Fault injection: a broker of each test's own (to kill), clean runs to compare with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import Message, Outcome, record_clean, stream

from lifecycle.demo.broker import LocalBroker, free_port

PARTITIONS = 3


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    """A broker of this test's own, on a port of its own (tests kill and restart it)."""
    local = LocalBroker(port=free_port(), partitions=PARTITIONS)
    local.start()
    yield local
    local.stop()


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
