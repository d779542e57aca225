"""Running workers (ingest, relay) in threads of one process until told to stop."""

from __future__ import annotations

import gc
import threading
from collections.abc import Sequence
from typing import Protocol

import structlog
from kafka.errors import KafkaError

from consumers.kafka import TopicMissingError

log = structlog.get_logger()

# A worker keeps tens of thousands of objects alive in its caches (aggregates, folds) and makes
# many short-lived ones per message. At CPython's default (a young collection every 700
# allocations, an older one every 7,000) the collector kept walking the cached objects: it took
# about a quarter of ingest's time. Measured (200,000 touchpoints, ingest only, two runs each):
# 4,600-4,900 msg/s at the default, 6,300-6,600 at 10,000; memory stayed the same.
YOUNG_COLLECTION_EVERY = 10_000


MAX_BACKOFF_SECONDS = 30.0


def backoff(attempts: int) -> float:
    """Seconds to wait after this many failed attempts in a row: 0.5 doubling up to 30."""
    return min(0.5 * 2.0 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def failed_part(error: BaseException) -> str:
    """Which part a retried failure came from, as faults are counted: broker or database."""
    return "broker" if isinstance(error, KafkaError | TopicMissingError) else "database"


def collect_garbage_less_often() -> None:
    """Set this process's collector for a long-running worker (call once, at start)."""
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 10, 10)


class Worker(Protocol):
    """A loop that runs until ``stop`` is set and then returns, having finished its batch."""

    name: str

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set."""


def run_until_stopped(workers: Sequence[Worker], stop: threading.Event) -> None:
    """Run each worker in its own thread; if one fails, stop the others and raise its error."""
    failures: list[BaseException] = []

    def guarded(worker: Worker) -> None:
        try:
            worker.run(stop)
        except BaseException as error:
            log.exception("worker_failed", worker=worker.name)
            failures.append(error)
            stop.set()

    threads = [
        threading.Thread(target=guarded, args=(worker,), name=worker.name, daemon=True)
        for worker in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # wake up now and then so that signals are handled
    if failures:
        raise failures[0]
