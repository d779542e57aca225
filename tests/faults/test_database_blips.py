"""PostgreSQL drops the workers' connections again and again: every worker stays up."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from harness import (
    assert_same,
    fault_counts,
    outcome,
    pipeline_settings,
    produce,
    wait_for_outcome,
    wait_until,
    workers,
)

from lifecycle import wiring
from lifecycle.adapters.eventstore import count_events
from lifecycle.demo.broker import free_port
from lifecycle.projections.store import ViewStore

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

STORM_SECONDS = 8.0
EVERY_SECONDS = 0.3


def terminate_backends(server: str, application: str, seconds: float) -> int:
    """Terminate every backend of ``application`` every 0.3 s for ``seconds``; how many."""
    terminated = 0
    with psycopg.connect(server, autocommit=True) as admin:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                [application],
            ).fetchall()
            terminated += sum(1 for (done,) in rows if done)
            time.sleep(EVERY_SECONDS)
    return terminated


@pytest.mark.parametrize("ingest_processes", [1, 2], ids=["one-ingest", "two-ingests"])
def test_database_connections_cut_for_seconds_mid_stream_lose_and_double_nothing(  # noqa: PLR0917
    broker, postgres_url, demo, clean_run, tmp_path, ingest_processes
):
    want = clean_run(demo)
    application = f"lifecycle-faults-{uuid.uuid4().hex[:8]}"
    metrics = [free_port() for _ in range(ingest_processes)]
    settings = pipeline_settings(postgres_url, broker.bootstrap)
    engine = wiring.engine_at(postgres_url)
    views = ViewStore(postgres_url)
    server = postgres_url.partition("?")[0]
    try:
        with workers() as start:
            # The workers' own connections carry this name (libpq reads PGAPPNAME).
            env = {"PGAPPNAME": application}
            started = [
                start(
                    settings,
                    tmp_path / "run.log",
                    "run",
                    LIFECYCLE_METRICS_PORT=str(metrics[0]),
                    **env,
                )
            ]
            started += [
                start(
                    settings,
                    tmp_path / f"ingest-{n}.log",
                    "ingest",
                    LIFECYCLE_METRICS_PORT=str(metrics[n]),
                    **env,
                )
                for n in range(1, ingest_processes)
            ]
            # A third first; the rest trickles in while the connections are being cut.
            head, tail = demo[: len(demo) // 3], demo[len(demo) // 3 :]
            produce(broker.bootstrap, head)
            wait_until(
                lambda: count_events(engine.recorder, ["lifecycle:Receipt.Created.v1"]) > 0,
                timeout=60,
                what="ingest to get going",
            )
            storm: list[int] = []
            cutter = threading.Thread(
                target=lambda: storm.append(terminate_backends(server, application, STORM_SECONDS))
            )
            cutter.start()
            chunk = len(tail) // 10 + 1
            for begin in range(0, len(tail), chunk):
                produce(broker.bootstrap, tail[begin : begin + chunk])
                time.sleep(STORM_SECONDS / 12)
            cutter.join()
            assert storm[0] > 0, "no connection was cut"
            assert all(worker.alive() for worker in started), "a worker exited"
            wait_for_outcome(
                engine,
                views,
                want,
                timeout=180,
                what="every touchpoint recorded once and the views caught up",
            )
            assert all(worker.alive() for worker in started), "a worker exited"
            faults = [fault_counts(port) for port in metrics]
        assert_same(outcome(engine, views), want)
        # The cuts were met (a dead connection taken from a pool is replaced unseen; one cut
        # in the middle of a transaction fails it), counted, and retried.
        met = sum(count for f in faults for (_, kind), count in f.items() if kind == "database")
        assert met >= 1
    finally:
        views.close()
        engine.close()
