"""Latency figures of ``make bench``: end to end at a steady input rate, and the API under load.

Everything measured here runs in processes of its own (the workers, the API server), so that
the load generator in this process does not share an interpreter with what it measures.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import msgspec
import uvicorn
from kafka import KafkaProducer

# The end-to-end phase has topics and groups of its own: it starts from empty stores. All its
# topics exist before the workers start: a consumer subscribed to a topic that does not exist
# yet only sees it at its next metadata refresh (minutes later).
E2E_TOPICS = ("e2e.touchpoints", "e2e.touchpoints.dlq", "e2e.events", "e2e.lifecycle")
PROBE_EVERY = 10  # one message in ten is a probe whose arrival in the views is timed
VISIBLE_POLL_SECONDS = 0.02


def quantiles(timings: list[float]) -> dict[str, float]:
    """p50 and p99 of some timings, and how many there were."""
    cuts = statistics.quantiles(timings, n=100)
    return {"p50": cuts[49], "p99": cuts[98], "count": len(timings)}


def e2e_settings(bootstrap: str, database_url: str, views_url: str) -> Any:  # noqa: ANN401
    """Settings of the end-to-end pipeline (its own topics, groups and relay)."""
    from lifecycle.settings import Settings  # noqa: PLC0415 (imported in the child)

    return Settings(
        database_url=database_url,
        views_url=views_url,
        kafka_bootstrap=bootstrap,
        touchpoints_topic=E2E_TOPICS[0],
        dead_letter_topic=E2E_TOPICS[1],
        lead_events_topic=E2E_TOPICS[2],
        changes_topic=E2E_TOPICS[3],
        ingest_group="e2e-ingest",
        views_group="e2e-views",
        relay_name="e2e-relay",
        session_timeout_ms=6_000,
        heartbeat_interval_ms=1_000,
    )


def _work(kind: str, settings: Any, stop: Any) -> None:  # noqa: ANN401
    """One worker of the pipeline, in a child process, until ``stop`` is set."""
    import logging  # noqa: PLC0415

    from consumers.worker import collect_garbage_less_often  # noqa: PLC0415
    from lifecycle import wiring  # noqa: PLC0415
    from lifecycle.adapters.logs import configure_logging  # noqa: PLC0415

    configure_logging("json", level=logging.WARNING)
    collect_garbage_less_often()
    if kind in {"views", "changes"}:
        store = wiring.views(settings)
        if kind == "views":
            wiring.views_worker(settings, store).run(stop)
        else:
            wiring.changes_publisher(settings, store).run(stop)
        store.close()
        return
    engine = wiring.engine(settings)
    worker = wiring.ingest if kind == "ingest" else wiring.relay
    worker(settings, engine).run(stop)
    engine.close()


@contextlib.contextmanager
def pipeline(settings: Any) -> Iterator[Callable[[], None]]:  # noqa: ANN401
    """Ingest, relay, views and the changes publisher, each in a process of its own.

    Yields a check that raises if one of them has died.
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [
        context.Process(target=_work, args=(kind, settings, stop), name=kind)
        for kind in ("ingest", "relay", "views", "changes")
    ]
    for worker in workers:
        worker.start()

    def check() -> None:
        for worker in workers:
            if not worker.is_alive():
                raise RuntimeError(f"the {worker.name} worker died (exit code {worker.exitcode})")

    try:
        yield check
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()


def probe(number: int) -> tuple[bytes, bytes, UUID]:
    """A form fill by a new person: (key, value, the lead id it will have)."""
    from lifecycle.domain.identity import IdentityKey, IdentityKind  # noqa: PLC0415

    email = f"probe-{number}@bench.example"
    at = datetime.now(UTC)
    value = msgspec.json.encode(
        {
            "specversion": "1.0",
            "id": f"probe-{number}",
            "source": "urn:bench:probe",
            "type": "lead.touchpoint",
            "time": at,
            "data": {"kind": "form_fill", "identity": {"email": email}},
        }
    )
    return email.encode(), value, IdentityKey.of(IdentityKind.EMAIL, email).lead_id(at)


class Visibility:
    """Watches the views for probe leads, and notes when each appeared."""

    def __init__(self, views_url: str) -> None:
        from lifecycle.projections.store import ViewStore  # noqa: PLC0415

        self.store = ViewStore(views_url)
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.announced: dict[str, float] = {}
        """When each probe's new-lead StageChanged was acknowledged on ``lead.lifecycle``."""
        self._lock = threading.Lock()

    def expect(self, lead_id: UUID, sent_at: float) -> None:
        """A probe was sent at ``sent_at`` (perf_counter)."""
        with self._lock:
            self.sent[str(lead_id)] = sent_at

    def watch(self, stop: threading.Event) -> None:
        """Poll the views until ``stop`` is set."""
        from lifecycle.projections.queries import live_leads  # noqa: PLC0415

        self.store.setup()
        while not stop.is_set():
            with self._lock:
                pending = [lead for lead in self.sent if lead not in self.seen][:900]
                unannounced = [lead for lead in self.sent if lead not in self.announced][:900]
            if unannounced:
                marks = ", ".join("?" * len(unannounced))
                with self.store.reading() as tx:
                    published = tx.value("SELECT seq FROM lifecycle_changes_published WHERE id = 1")
                    rows = tx.rows(
                        "SELECT lead_id FROM lifecycle_changes "  # noqa: S608 (only ?s)
                        f"WHERE type = 'StageChanged' AND seq <= ? AND lead_id IN ({marks})",
                        [published or 0, *unannounced],
                    )
                now = time.perf_counter()
                with self._lock:
                    for (lead_id,) in rows:
                        self.announced.setdefault(str(lead_id), now)
            if pending:
                with self.store.reading() as tx:
                    slot = self.store.active_slot(tx)
                    marks = ", ".join("?" * len(pending))
                    rows = tx.rows(
                        f"SELECT lead_id FROM {live_leads(slot)} x "  # noqa: S608 (only ?s)
                        f"WHERE lead_id IN ({marks})",
                        pending,
                    )
                now = time.perf_counter()
                with self._lock:
                    for (lead_id,) in rows:
                        self.seen[str(lead_id)] = now
            time.sleep(VISIBLE_POLL_SECONDS)

    def reset(self) -> None:
        """Forget every probe (the warm-up's)."""
        with self._lock:
            self.sent.clear()
            self.seen.clear()
            self.announced.clear()

    def latencies_ms(self) -> list[float]:
        """Milliseconds from send to visible, for every probe seen."""
        return [(self.seen[k] - self.sent[k]) * 1000 for k in self.seen]

    def announced_ms(self) -> list[float]:
        """Milliseconds from send to the broker's ack of the probe's StageChanged."""
        return [(self.announced[k] - self.sent[k]) * 1000 for k in self.announced]

    def missing(self) -> int:
        """Probes sent and not (yet) seen, or not (yet) announced."""
        return 2 * len(self.sent) - len(self.seen) - len(self.announced)


def end_to_end(
    bootstrap: str,
    database_url: str,
    views_url: str,
    messages: list[tuple[bytes, bytes]],
    *,
    rate: int,
) -> dict[str, float]:
    """p50/p99 (ms) from produce to visible in the views, at a steady ``rate`` of messages/s.

    Also from produce to the new lead's StageChanged acknowledged on ``lead.lifecycle``
    (``announced_p50``, ``announced_p99``).
    """
    settings = e2e_settings(bootstrap, database_url, views_url)
    visibility = Visibility(views_url)
    stop = threading.Event()
    watcher = threading.Thread(target=visibility.watch, args=(stop,), daemon=True)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    topic = settings.touchpoints_topic
    with pipeline(settings) as check_workers:
        watcher.start()
        # Warm up: every worker has joined its group once the first probe is visible.
        key, value, lead_id = probe(0)
        producer.send(topic, key=key, value=value).get(timeout=30)
        visibility.expect(lead_id, time.perf_counter())
        _wait(
            lambda: visibility.missing() == 0,
            timeout=120,
            what="the pipeline to start",
            check=check_workers,
        )
        visibility.reset()
        # One message in PROBE_EVERY is a probe (in place of a demo message).
        stream: list[tuple[bytes, bytes, UUID | None]] = [
            probe(index + 1) if index % PROBE_EVERY == 0 else (key, value, None)
            for index, (key, value) in enumerate(messages)
        ]
        started = time.perf_counter()
        for index, (key, value, probe_lead) in enumerate(stream):
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if probe_lead is not None:
                visibility.expect(probe_lead, time.perf_counter())
            producer.send(topic, key=key, value=value)
        sent_for = time.perf_counter() - started
        producer.flush()
        _wait(
            lambda: visibility.missing() == 0,
            timeout=120,
            what="every probe to be visible",
            check=check_workers,
        )
    stop.set()
    watcher.join()
    producer.close()
    visibility.store.close()
    announced = quantiles(visibility.announced_ms())
    return {
        **quantiles(visibility.latencies_ms()),
        "announced_p50": announced["p50"],
        "announced_p99": announced["p99"],
        "rate_asked": rate,
        "rate_sent": len(messages) / sent_for,
    }


def _wait(
    condition: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    check: Callable[[], None] = lambda: None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def _serve(settings: Any, port: int) -> None:  # noqa: ANN401
    """The API (``lifecycle serve``), in a child process."""
    from lifecycle import wiring  # noqa: PLC0415
    from lifecycle.api.app import create_app  # noqa: PLC0415

    engine = wiring.engine(settings)
    api = wiring.api(settings, engine)
    uvicorn.run(create_app(api), host="127.0.0.1", port=port, log_level="warning")


def api_latency(settings: Any, *, clients: int = 4, seconds: float = 3) -> dict[str, dict]:  # noqa: ANN401
    """p50/p99 (ms) of each kind of request, sent by ``clients`` clients for ``seconds``."""
    from lifecycle.demo.broker import free_port  # noqa: PLC0415

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(settings, port))
    server.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _answers(f"{base}/healthz"), timeout=60, what="the API to start")
        lead_ids = [
            lead["lead_id"]
            for lead in httpx.get(f"{base}/api/leads", params={"limit": 500}).json()["leads"]
        ]
        # Quality as of a past instant reads the outcomes that began or ended on its day one
        # by one: a day in the middle of the history, at noon.
        newest = httpx.get(f"{base}/api/trend").json()["weeks"]
        middle = newest[len(newest) // 2]["week"] if newest else "2026-01-01"
        paths: dict[str, Callable[[int], str]] = {
            "lead lookup": lambda i: f"/api/leads/{lead_ids[i % len(lead_ids)]}",
            "funnel": lambda _: "/api/funnel",
            "cost per lead": lambda _: "/api/cost-per-lead",
            "attribution linear": lambda _: "/api/attribution?model=linear&by=campaign",
            "attribution markov": lambda _: "/api/attribution?model=markov&by=channel",
            "quality": lambda _: "/api/quality?by=campaign&conversion=customer",
            "quality as of": lambda _: f"/api/quality?by=channel&as_of={middle}T12:00:00Z",
            "cohorts": lambda _: "/api/cohorts?by=channel&conversion=customer",
        }
        return {
            name: quantiles(_load(base, path, clients=clients, seconds=seconds))
            for name, path in paths.items()
        }
    finally:
        server.terminate()
        server.join(timeout=30)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code in {200, 503}  # 503: the broker is not asked here
    except httpx.TransportError:
        return False


def _load(base: str, path: Callable[[int], str], *, clients: int, seconds: float) -> list[float]:
    timings: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base) as http:
            deadline = time.monotonic() + seconds
            i = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                http.get(path(i)).raise_for_status()
                timings.append((time.perf_counter() - started) * 1000)
                i += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings
