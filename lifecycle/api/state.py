"""What the API's handlers share: settings, the engine, the views, the broker client."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from lifecycle.api.pipeline import Broker
from lifecycle.application import LeadLifecycle
from lifecycle.projections.store import ViewStore
from lifecycle.settings import Settings


@dataclass
class Api:
    """One per server process; handlers run in worker threads, each with its own views link."""

    settings: Settings
    engine: LeadLifecycle
    token: str | None = None
    broker: Broker = field(init=False)
    _local: threading.local = field(default_factory=threading.local, init=False)
    _opened: list[ViewStore] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.broker = Broker(self.settings.kafka_bootstrap)
        self.views().setup()

    def views(self) -> ViewStore:
        """This thread's connection to the views (a connection serves one thread at a time)."""
        store: ViewStore | None = getattr(self._local, "store", None)
        if store is None:
            store = ViewStore(self.settings.views_database_url)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    def close(self) -> None:
        """Close every views connection and the broker client (not the engine: the caller's)."""
        with self._lock:
            for store in self._opened:
                store.close()
            self._opened.clear()
        self.broker.close()
