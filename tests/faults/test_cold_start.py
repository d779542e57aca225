"""Every part started at the same moment on a fresh PostgreSQL schema comes up."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from harness import pipeline_settings, produce, stream, wait_for_outcome, wait_until, workers

from lifecycle import wiring
from lifecycle.demo.broker import free_port
from lifecycle.projections.store import ViewStore

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

SETTLE_SECONDS = 8


def _health(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_ingest_relay_views_and_the_api_started_together_on_a_fresh_schema_all_come_up(
    broker, postgres_url, clean_run, tmp_path, attempt
):
    del attempt  # (each attempt has a fresh schema of its own: races show up at random)
    settings = pipeline_settings(postgres_url, broker.bootstrap)
    port = free_port()
    with workers() as start:
        started = {
            name: start(settings, tmp_path / f"{name}.log", *args)
            for name, args in (
                ("ingest", ["ingest"]),
                ("relay", ["relay"]),
                ("project", ["project"]),
                ("serve", ["serve", "--port", str(port)]),
            )
        }
        time.sleep(SETTLE_SECONDS)
        down = {
            name: worker.log.read_text()[-600:]
            for name, worker in started.items()
            if not worker.alive()
        }
        assert not down, f"did not come up: {json.dumps(down, indent=1)}"
        wait_until(lambda: _health(port) == 200, timeout=30, what="the API to answer healthy")
        # And they work together: the views come out as a clean run's.
        messages = stream(10, seed=2)
        produce(broker.bootstrap, messages)
        engine = wiring.engine_at(postgres_url)
        views = ViewStore(postgres_url)
        try:
            wait_for_outcome(
                engine, views, clean_run(messages), timeout=60, what="the views to catch up"
            )
        finally:
            views.close()
            engine.close()
        assert all(worker.alive() for worker in started.values())
