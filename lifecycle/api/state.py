"""What the API's handlers share: settings, the engine, the views, the broker client."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lifecycle.api.end_offsets import EndOffsets
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections.sql import Transaction
from lifecycle.projections.store import ViewStore
from lifecycle.settings import Settings

IDLE_CONNECTIONS = 8


@dataclass
class Api:
    """One per server process. Handlers run in worker threads and borrow a views connection."""

    settings: Settings
    engine: LeadLifecycle
    connect: Callable[[], ViewStore]
    """Opens a views connection (``lifecycle.wiring.views``)."""
    token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    """Erases and exports (``lifecycle/api/admin.py``); reads too."""
    broker: EndOffsets = field(init=False)
    _idle: queue.LifoQueue[ViewStore] = field(default_factory=queue.LifoQueue, init=False)
    _closed: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        self.broker = EndOffsets(self.settings.kafka_bootstrap)
        with self.views() as store:
            store.setup()

    @contextmanager
    def views(self) -> Iterator[ViewStore]:
        """A views connection for this request: one of the idle ones, or a new one.

        A connection that failed is closed rather than handed out again; at most
        ``IDLE_CONNECTIONS`` wait for the next request, the others are closed.
        """
        try:
            store = self._idle.get_nowait()
        except queue.Empty:
            store = self.connect()
        try:
            yield store
        except BaseException:
            store.close()
            raise
        if self._closed.is_set() or self._idle.qsize() >= IDLE_CONNECTIONS:
            store.close()
        else:
            self._idle.put(store)

    @contextmanager
    def reading(self) -> Iterator[tuple[ViewStore, Transaction]]:
        """A views connection and a read-only transaction on it."""
        with self.views() as store, store.reading() as tx:
            yield store, tx

    def close(self) -> None:
        """Close the idle views connections and the broker client (the engine is the caller's)."""
        self._closed.set()
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
        self.broker.close()
