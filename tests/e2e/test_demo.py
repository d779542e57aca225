"""``lifecycle demo`` as a newcomer runs it: broker, stream, workers, tables, dashboard, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx

from lifecycle.demo.broker import free_port


def test_the_demo_runs_the_whole_pipeline_and_prints_the_views(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "demo", "--no-serve", "--people", "300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    summary = re.search(
        r"(\d+) recorded, (\d+) duplicates dropped, (\d+) dead-lettered", done.stderr
    )
    assert summary, done.stderr
    recorded, duplicates, dead_lettered = map(int, summary.groups())
    assert recorded > 1500
    assert duplicates > 0
    assert dead_lettered == 4  # the malformed messages the demo sends on purpose
    for title in ("Funnel", "Temperature now", "Cost per lead by campaign", "by channel"):
        assert title in done.stdout
    assert "stopped cleanly" in done.stderr
    # The other commands read what the demo left, where they look by default.
    funnel = subprocess.run(
        [sys.executable, "-m", "lifecycle", "funnel", "--json"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(funnel.stdout)["reached"]["lead"] > 100


def test_the_demo_serves_the_dashboard_until_interrupted(tmp_path):
    port = free_port()
    with (tmp_path / "demo.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "demo", "--people", "200", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        while f"http://127.0.0.1:{port}/" not in (tmp_path / "demo.log").read_text():
            assert process.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, "the dashboard did not come up"
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        funnel = httpx.get(f"{base}/api/funnel").json()
        health = httpx.get(f"{base}/healthz")
        page = httpx.get(base)
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)

    assert funnel["reached"]["lead"] > 100
    assert health.status_code == 200, health.text
    assert {p["worker"] for p in health.json()["positions"]} == {"ingest", "views"}
    assert all(p["lag"] == 0 for p in health.json()["positions"] if p["worker"] == "ingest")
    assert "lead-lifecycle" in page.text
    assert code == 0
    assert "stopped cleanly" in (tmp_path / "demo.log").read_text()
