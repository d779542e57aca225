"""Running workers (ingest, relay) in threads of one process until told to stop."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

import structlog

log = structlog.get_logger()


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
