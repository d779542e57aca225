"""Fixtures shared by every test layer: CloudEvent builders and the two event stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import msgspec
import psycopg
import pytest
import structlog

from lifecycle import wiring
from lifecycle.contracts.inbound import InboundEvent, decode_structured
from lifecycle.ledger.engine import LeadLifecycle

POSTGRES_URL = os.environ.get(
    "LIFECYCLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Events:
    """Builds valid structured-mode CloudEvents (as dicts, bytes or decoded events)."""

    def __init__(self) -> None:
        self._ids = count(1)

    def at(self, day: float) -> datetime:
        return T0 + timedelta(days=day)

    def touchpoint(
        self, kind: str, day: float, *, event_id: str | None = None, **data: Any
    ) -> dict[str, Any]:
        identity = {
            k: data.pop(k) for k in ("email", "phone", "anonymous_id", "customer_id") if k in data
        }
        return self.cloud_event(
            "lead.touchpoint", day, {"kind": kind, "identity": identity, **data}, event_id
        )

    def qualification(self, day: float, *, bant: int = 4, **identity: str) -> dict[str, Any]:
        flags = [i < bant for i in range(4)]
        data = dict(zip(("budget", "authority", "need", "timeline"), flags, strict=True))
        return self.cloud_event("lead.qualification", day, {"identity": identity, **data})

    def disqualification(
        self, day: float, reason: str = "no budget", **identity: str
    ) -> dict[str, Any]:
        return self.cloud_event(
            "lead.disqualification", day, {"identity": identity, "reason": reason}
        )

    def spend(
        self,
        campaign: str,
        amount_minor: int,
        *,
        day: float = 0,
        channel: str = "paid_search",
        event_id: str | None = None,
    ) -> dict[str, Any]:
        data = {
            "campaign": {"id": campaign, "channel": channel},
            "amount_minor": amount_minor,
            "currency": "EUR",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
        }
        return self.cloud_event("campaign.spend", day, data, event_id)

    def cloud_event(
        self, type_: str, day: float, data: dict[str, Any], event_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "specversion": "1.0",
            "id": event_id or f"evt-{next(self._ids)}",
            "source": "https://tests.example.com",
            "type": type_,
            "time": self.at(day).isoformat(),
            "data": data,
        }

    @staticmethod
    def encode(event: dict[str, Any]) -> bytes:
        return msgspec.json.encode(event)

    @staticmethod
    def decode(*events: dict[str, Any]) -> list[InboundEvent]:
        return [decode_structured(msgspec.json.encode(e)) for e in events]


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """Each test starts and ends with structlog's defaults (commands configure it)."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/lifecycle.db"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema for this test, dropped afterwards."""
    schema = f"lifecycle_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield f"{POSTGRES_URL}?schema={schema}"
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """The same test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def open_engine(database_url) -> Iterator[Any]:
    """``open_engine()``: a new application on this test's store (closed afterwards)."""
    opened: list[LeadLifecycle] = []

    def open_() -> LeadLifecycle:
        engine = wiring.engine_at(database_url)
        opened.append(engine)
        return engine

    yield open_
    for engine in opened:
        engine.close()


@pytest.fixture
def engine(open_engine) -> LeadLifecycle:
    return open_engine()
