"""Fixtures of the integration tests (SQLite and PostgreSQL, no broker)."""

from __future__ import annotations

import pytest
import scenario

from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings


@pytest.fixture
def views(database_url, engine, events):
    """The scenario recorded in the store and folded into the views."""
    engine.record(events.decode(*scenario.history(events)))
    store = ViewStore(database_url)
    settings = Settings(database_url=database_url)
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    yield store
    store.close()
