"""What the fault-injection tests share: an input, its clean run, and outcomes to compare.

A fault run is judged against a clean run of the same input: the counts of receipts, facts and
spend in the store, every view row keyed by the identities of its lead (lead ids depend on
arrival order; identities do not), the referrals, the funnel and cost per lead.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest
from kafka import KafkaProducer

from lifecycle import wiring
from lifecycle.adapters.eventstore import count_events
from lifecycle.cli.demo import demo_stream
from lifecycle.contracts.inbound import InboundEvent, decode_message
from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.errors import ContractError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.projections import queries
from lifecycle.projections.attribution import Question, attribution
from lifecycle.projections.quality import Asked, quality
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.schema import instant
from lifecycle.projections.sql import Slot
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

Message = tuple[bytes | None, bytes]
END = datetime(2026, 11, 1, tzinfo=UTC)
RECEIPTS = "lifecycle:Receipt.Created.v1"
FACTS = "lifecycle:Lead.FactRecorded.v1"
SPEND = "lifecycle:Campaign.SpendRecorded.v1"


def stream(people: int, *, seed: int = 11) -> list[Message]:
    """The demo generator's touchpoints (3% resent, 4 malformed), as Kafka key and value."""
    return demo_stream(people, seed=seed, end=END)


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


def decoded(messages: Iterable[Message]) -> list[InboundEvent]:
    """The events of the messages that the contract accepts."""
    events = []
    for _, value in messages:
        try:
            events.append(decode_message(value, []))
        except ContractError:
            continue
    return events


def refused(messages: Iterable[Message]) -> int:
    """How many of the messages the contract refuses."""
    count = 0
    for _, value in messages:
        try:
            decode_message(value, [])
        except ContractError:
            count += 1
    return count


@dataclass(frozen=True)
class Outcome:
    """What a run left behind, free of lead ids (identities stand for the leads)."""

    receipts: int
    facts: int
    spend: int
    leads: dict[tuple[str, ...], dict[str, object]] = field(repr=False)
    doubled: list[tuple[str, ...]]
    """Identities with more than one live row (none, once the views caught up)."""
    referrals: list[tuple[object, ...]] = field(repr=False)
    funnel: dict[str, object] = field(repr=False)
    cost: dict[str, list[dict[str, object]]] = field(repr=False)
    credit: dict[str, dict[str, float]] = field(repr=False)
    """Per model, customers credited per campaign."""
    quality: dict[str, tuple[int, int]] = field(repr=False)
    """Per campaign of acquisition: leads, and those who reached sql."""


def _plain(value: object, column: str = "") -> object:
    """A column's value as both databases give it back, compared as equals."""
    if value is not None and (column.endswith(("_at", "_until")) or isinstance(value, datetime)):
        return instant(value).isoformat()  # type: ignore[union-attr]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def outcome(engine: LeadLifecycle, store: ViewStore, slot: Slot | None = None) -> Outcome:
    """The run's outcome, read from its event store and views (the active slot by default)."""
    identities: dict[str, tuple[str, ...]] = {}

    def who(lead_id: object) -> tuple[str, ...] | None:
        if lead_id is None:
            return None
        key = str(lead_id)
        if key not in identities:
            lead = engine.get_lead(UUID(key))
            identities[key] = tuple(sorted(str(k) for k in lead.identifiers))
        return identities[key]

    with store.reading() as tx:
        slot = slot or store.active_slot(tx)
        columns = [
            c for c in _columns(tx, f"lifecycle_leads_{slot}") if c not in {"lead_id", "version"}
        ]
        leads: dict[tuple[str, ...], dict[str, object]] = {}
        doubled: list[tuple[str, ...]] = []
        for row in tx.rows(
            f"SELECT lead_id, {', '.join(columns)} FROM lifecycle_leads_{slot} "
            "WHERE merged_into IS NULL"
        ):
            values = {c: _plain(v, c) for c, v in zip(columns, row[1:], strict=True)}
            values["referrer_lead_id"] = who(values["referrer_lead_id"])
            identity = who(row[0])
            assert identity is not None
            if identity in leads:  # (a merge the views have not applied yet)
                doubled.append(identity)
            leads[identity] = values
        referrals = sorted(
            (who(r.referrer_lead_id), r.referred, r.became_customers, r.revenue_minor, r.currency)
            for r in queries.referrals(tx, slot)
        )
        funnel = msgspec.to_builtins(queries.funnel(tx, slot))
        cost = {
            by: [
                {k: _plain(v) for k, v in vars(row).items()}
                for row in queries.cost_per_lead(tx, slot, by)  # type: ignore[arg-type]
            ]
            for by in ("campaign", "channel", "month")
        }
        customers = Question(Conversion.CUSTOMER, "campaign")
        credit = {
            model.value: {
                str(item.group): round(item.credit, 6)
                for item in attribution(tx, slot, model, customers).items
            }
            for model in Model
        }
        asked = Asked(Conversion.SQL, datetime(2999, 1, 1, tzinfo=UTC))
        sources = {
            str(item.group): (item.leads, item.conversions)
            for item in quality(tx, slot, asked, "campaign").items
        }
    return Outcome(
        receipts=count_events(engine.recorder, [RECEIPTS]),
        facts=count_events(engine.recorder, [FACTS]),
        spend=count_events(engine.recorder, [SPEND]),
        leads=leads,
        doubled=sorted(doubled),
        referrals=referrals,
        funnel=funnel,
        cost=cost,
        credit=credit,
        quality=sources,
    )


def _columns(tx: Any, table: str) -> list[str]:
    if tx.dialect == "sqlite":
        return [row[1] for row in tx.rows(f"PRAGMA table_info({table})")]
    return [
        row[0]
        for row in tx.rows(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            [table],
        )
    ]


def differences(got: Outcome, want: Outcome, *, limit: int = 8) -> list[str]:
    """What differs, said briefly (for an assertion's message)."""
    found = [
        f"{name}: {getattr(got, name)} instead of {getattr(want, name)}"
        for name in ("receipts", "facts", "spend")
        if getattr(got, name) != getattr(want, name)
    ]
    found.extend(_lead_differences(got, want))
    if got.referrals != want.referrals:
        found.append(f"referrals: {len(got.referrals)} rows instead of {len(want.referrals)}")
    if got.funnel != want.funnel:
        found.append(f"funnel: {got.funnel} instead of {want.funnel}")
    found.extend(
        f"cost by {by}: {rows[:2]} instead of {want.cost[by][:2]}"
        for by, rows in got.cost.items()
        if rows != want.cost[by]
    )
    found.extend(
        f"{model} credit: {credit} instead of {want.credit[model]}"
        for model, credit in got.credit.items()
        if credit != want.credit[model]
    )
    if got.quality != want.quality:
        found.append(f"quality: {got.quality} instead of {want.quality}")
    return found[:limit]


def _lead_differences(got: Outcome, want: Outcome) -> list[str]:
    found = []
    if got.doubled:
        found.append(f"{len(got.doubled)} identities with two rows, e.g. {got.doubled[:3]}")
    missing = sorted(set(want.leads) - set(got.leads))
    extra = sorted(set(got.leads) - set(want.leads))
    if missing:
        found.append(f"{len(missing)} leads missing, e.g. {missing[:3]}")
    if extra:
        found.append(f"{len(extra)} leads too many, e.g. {extra[:3]}")
    for identity in sorted(set(got.leads) & set(want.leads)):
        a, b = got.leads[identity], want.leads[identity]
        if a != b:
            columns = {c: (a[c], b[c]) for c in a if a[c] != b.get(c)}
            found.append(f"lead {identity}: {columns}")
    return found


def assert_same(got: Outcome, want: Outcome) -> None:
    """Fail with what differs."""
    assert got == want, "\n".join(differences(got, want))


def record_clean(database_url: str, messages: Sequence[Message], *, batch: int = 500) -> Outcome:
    """The clean run: the input recorded in order, the views replayed from the store."""
    engine = wiring.engine_at(database_url)
    store = ViewStore(database_url)
    try:
        events = decoded(messages)
        for start in range(0, len(events), batch):
            engine.record(events[start : start + batch])
        rules = default_rulebook()
        swap(
            store, fill_from_store(engine, store, rules, Settings(database_url=database_url)), rules
        )
        return outcome(engine, store)
    finally:
        store.close()
        engine.close()


def wait_until(
    condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.5
) -> None:
    """Poll until the condition holds, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_outcome(
    engine: LeadLifecycle, store: ViewStore, want: Outcome, *, timeout: float, what: str
) -> None:
    """Poll the outcome until it is the one wanted, or fail saying how it differs."""
    store.setup()  # (as the views worker does; it may not have yet)
    deadline = time.monotonic() + timeout
    while True:
        got = outcome(engine, store)
        if got == want:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what}:\n"
                + "\n".join(differences(got, want))
            )
        time.sleep(2)


def produce(
    bootstrap: str,
    messages: Sequence[Message],
    topic: str = "lead.touchpoints",
    **options: Any,
) -> None:
    """Send messages and wait until the broker acknowledged each."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, **{"linger_ms": 10, **options})
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


@dataclass
class Worker:
    """A ``lifecycle`` command running as a process of its own, its log in a file."""

    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.process.poll() is None

    def lines(self) -> list[dict[str, Any]]:
        """Its JSON log lines so far (anything else it printed is left out)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return found

    def logged(self, event: str) -> list[dict[str, Any]]:
        """Its log lines of one event."""
        return [line for line in self.lines() if line.get("event") == event]

    def stop(self) -> int:
        """SIGTERM, then its exit code (SIGKILL after a minute)."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@contextmanager
def workers() -> Iterator[Callable[..., Worker]]:
    """``start(settings, log, *args, **env)``: ``lifecycle ARGS`` processes, stopped at the end."""
    started: list[Worker] = []

    def start(settings: Settings, log: Path, *args: str, **env: str) -> Worker:
        environment = {**os.environ, **settings.environment(), **env}
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", *args],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(process, log)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def fault_counts(port: int) -> dict[tuple[str, str], float]:
    """``lifecycle_faults_total`` by (worker, kind), scraped from a worker's metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("lifecycle_faults_total{"):
            labels, value = line.removeprefix("lifecycle_faults_total{").split("} ")
            parts = dict(part.split("=") for part in labels.split(","))
            key = (parts["worker"].strip('"'), parts["kind"].strip('"'))
            counts[key] = float(value)
    return counts
