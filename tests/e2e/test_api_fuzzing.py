"""schemathesis, from /schema/openapi.json, against `lifecycle serve` as users run it.

Every check schemathesis has must pass: each answer documented (status, media type, body),
every request the document allows accepted, every one it forbids refused with a 4xx, no 5xx,
and with LIFECYCLE_API_TOKEN set, no /api answer without the token. The seed is fixed so that
a run in CI is the run on a laptop; change it (or drop --seed) to explore.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import scenario
from seeding import projected

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
TOKEN = "fuzzing-token"  # noqa: S105 (a test's own token)
SEED = "20261202"
EXAMPLES = "40"


@pytest.fixture
def store(sqlite_url, events) -> str:
    """The hand-computed scenario, recorded and projected: leads to find, funnels to count."""
    return projected(sqlite_url, events.decode(*scenario.history(events)))


@pytest.fixture
def serve(store, broker, tmp_path) -> Iterator[object]:
    """``serve(token)``: `lifecycle serve` on a free port over the store; its base URL."""
    processes: list[subprocess.Popen[str]] = []

    def start(token: str | None) -> str:
        env = os.environ | {
            "LIFECYCLE_DATABASE_URL": store,
            # A broker that answers: /healthz is 200, as in a healthy deployment.
            "LIFECYCLE_KAFKA_BOOTSTRAP": broker.bootstrap,
            "LIFECYCLE_API_TOKEN": token or "",
        }
        log = tmp_path / f"serve-{len(processes)}.log"
        with log.open("w") as stderr:
            # Its log goes to a file: a pipe nobody reads would stop the server once full.
            process = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", "serve", "--port", "0"],
                env=env,
                cwd=tmp_path,
                stderr=stderr,
                text=True,
            )
        processes.append(process)
        deadline = time.monotonic() + 30
        while not (found := re.search(r"http://127\.0\.0\.1:(\d+)/", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        return f"http://127.0.0.1:{found[1]}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


def fuzz(base: str, tmp_path: Path, *headers: str) -> subprocess.CompletedProcess[str]:
    command = [str(SCHEMATHESIS), "run", f"{base}/schema/openapi.json", "--checks", "all"]
    command += ["--max-examples", EXAMPLES, "--seed", SEED, "--generation-database", "none"]
    command += ["--no-color", *(part for header in headers for part in ("-H", header))]
    # As a user runs it: no hooks, no configuration file.
    return subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )


# Seventeen /api routes (fifteen reads, erase and export), /metrics (GET, HEAD), /healthz.
OPERATIONS = 20


def operations_tested(output: str) -> int:
    found = re.search(r"Tested: (\d+)", output)
    return int(found[1]) if found else 0


def test_schemathesis_finds_nothing_the_openapi_document_does_not_say(serve, tmp_path):
    done = fuzz(serve(None), tmp_path)

    assert done.returncode == 0, done.stdout[-6000:]
    assert operations_tested(done.stdout) == OPERATIONS


def test_schemathesis_finds_nothing_undocumented_with_a_token_and_no_answer_without_it(
    serve, tmp_path
):
    done = fuzz(serve(TOKEN), tmp_path, f"Authorization: Bearer {TOKEN}")

    assert done.returncode == 0, done.stdout[-6000:]
    assert operations_tested(done.stdout) == OPERATIONS
