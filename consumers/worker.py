"""Running workers (ingest, relay, views) in threads of one process; how they wait out faults."""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Sequence
from typing import Protocol

import psycopg
import structlog
from eventsourcing import persistence
from kafka.errors import KafkaError

from consumers.kafka import TopicMissingError
from lifecycle.adapters.logs import describe
from lifecycle.adapters.metrics import fault
from lifecycle.errors import TransientError

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


# What a database raises about the data itself (a value a column refuses, a broken constraint):
# retrying does not help; the rest of what it raises is about the database (unreachable,
# failing over, read-only for a moment, locked, a table missing) and is waited out.
_DATABASE = (persistence.PersistenceError, psycopg.Error, sqlite3.Error)
_ABOUT_THE_DATA = (
    persistence.DataError,
    persistence.IntegrityError,
    psycopg.DataError,
    psycopg.IntegrityError,
    sqlite3.DataError,
    sqlite3.IntegrityError,
)


def transient(error: BaseException) -> bool:
    """Whether a failure is worth waiting out: the broker or the database away, not the data."""
    if isinstance(error, KafkaError | TransientError):
        return True
    return isinstance(error, _DATABASE) and not isinstance(error, _ABOUT_THE_DATA)


def failed_part(error: BaseException) -> str:
    """Which part a retried failure came from, as faults are counted: broker or database."""
    return "broker" if isinstance(error, KafkaError | TopicMissingError) else "database"


def will_retry(worker: str, error: BaseException, attempt: int, delay: float) -> float:
    """Count and log a failure the worker waits out (``<worker>_failed_will_retry``); ``delay``."""
    fault(worker, failed_part(error))
    event = f"{worker}_failed_will_retry"  # structlog event names, not a format string
    log.warning(event, error=describe(error), attempt=attempt, retry_in=delay)
    return delay


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
