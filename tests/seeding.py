"""Stores for tests that need data: recorded in the event store, then projected into views."""

from __future__ import annotations

from typing import Any

import msgspec

from lifecycle import wiring
from lifecycle.contracts import inbound
from lifecycle.demo.sample import generate
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings


def projected(url: str, events: list[Any]) -> str:
    """``url``, after ``events`` were recorded there and the views replayed from them."""
    engine = wiring.engine_at(url)
    for start in range(0, len(events), 1000):
        engine.record(events[start : start + 1000])
    views = ViewStore(url)
    settings = Settings(database_url=url, kafka_bootstrap="127.0.0.1:9")
    swap(views, fill_from_store(engine, views, default_rulebook(), settings), default_rulebook())
    views.close()
    engine.close()
    return url


def demo_like(people: int = 300) -> list[Any]:
    """The demo's kind of history (its campaign ids, kinds and reasons), decoded."""
    encode = msgspec.json.Encoder().encode
    return [inbound.decode_structured(encode(event)) for event in generate(people=people)]


def table_rows(tx: Any, table: str) -> list[tuple[object, ...]]:
    """A table's rows in a stable order, to compare two builds of the views.

    Sums of attribution shares are rounded where the order they were added in cannot show.
    """
    return sorted(
        (
            tuple(round(v, 9) + 0.0 if isinstance(v, float) else v for v in row)
            for row in tx.rows(f"SELECT * FROM {table}")
        ),
        key=repr,
    )
