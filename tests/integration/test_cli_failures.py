"""Every command that cannot work says why in one line and exits 2, never with a traceback."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys

import pytest
from seeding import demo_like as demo_like_events
from seeding import projected
from typer.testing import CliRunner

from lifecycle.cli import app

POSTGRES_URL = os.environ.get(
    "LIFECYCLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
# (Nothing listens on these.)
NO_BROKER = "127.0.0.1:9"
BROKEN_STORES = {
    "missing-schema": f"{POSTGRES_URL}?schema=lifecycle_no_such_schema",
    "unreachable-server": "postgresql://postgres@127.0.0.1:9/test?connect_timeout=2",
    "bad-url": "mysql://somewhere/leads",
    "no-path": "sqlite://",
}
COMMANDS = {
    "funnel": ["funnel"],
    "cpl": ["cpl"],
    "sla": ["sla"],
    "parked": ["parked"],
    "lead-show": ["lead", "show", "email:nobody@example.com"],
    "replay": ["replay"],
    "whatif": ["whatif", "--rules", "RULES"],
    "import": ["import", "INPUT"],
    # The long-running ones stop at start-up, before they would serve or consume.
    "serve": ["serve", "--port", "0"],
    "ingest": ["ingest"],
    "relay": ["relay"],
    "project": ["project"],
    "run": ["run"],
}
# The commands that talk to the broker, and brokers that cannot answer.
BROKER_COMMANDS = {
    "dlq-show": ["dlq", "show"],
    "dlq-redrive": ["dlq", "redrive", "--all"],
}
BROKEN_BROKERS = {"nothing-listens": NO_BROKER, "no-such-host": "no-such-host.invalid:9092"}


@pytest.fixture
def cli(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('rules_version = "test"\n')
    lines = tmp_path / "input.jsonl"
    lines.write_text("{}\n")
    runner = CliRunner()

    def invoke(args: list[str], database_url: str):
        args = [str(rules) if a == "RULES" else str(lines) if a == "INPUT" else a for a in args]
        return runner.invoke(
            app,
            args,
            env={"LIFECYCLE_DATABASE_URL": database_url, "LIFECYCLE_KAFKA_BOOTSTRAP": NO_BROKER},
        )

    return invoke


def lifecycle(*args: str, env: dict[str, str] | None = None, cwd=None):
    """The command as a user runs it (its own process, through the console entry point)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        env=environment | (env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_exit_2(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command said (after asserting it was one line and exit 2)."""
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def said_in_one_line(result) -> None:
    """As one_line_exit_2, for a command run in this process (typer's CliRunner)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    one_line_exit_2(subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr))
    assert "Traceback" not in result.output


@pytest.fixture
def empty_store(sqlite_url) -> str:
    """A SQLite store with nothing in it yet (reports refuse a file that is not there)."""
    sqlite3.connect(sqlite_url.removeprefix("sqlite:///")).close()
    return sqlite_url


@pytest.mark.postgres
@pytest.mark.parametrize("store", list(BROKEN_STORES))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_that_cannot_reach_its_store_says_why_in_one_line_and_exits_2(
    cli, store, command
):
    said_in_one_line(cli(COMMANDS[command], BROKEN_STORES[store]))


# In a process of its own: kafka-python leaves the socket of a failed bootstrap to the garbage
# collector, which the process's exit takes care of (and pytest would report in this one).
@pytest.mark.parametrize("broker", list(BROKEN_BROKERS))
@pytest.mark.parametrize("command", list(BROKER_COMMANDS))
def test_a_command_that_cannot_reach_the_broker_says_why_in_one_line_and_exits_2(
    sqlite_url, broker, command
):
    env = {
        "LIFECYCLE_DATABASE_URL": sqlite_url,
        "LIFECYCLE_KAFKA_BOOTSTRAP": BROKEN_BROKERS[broker],
    }

    one_line_exit_2(lifecycle(*BROKER_COMMANDS[command], env=env))


@pytest.mark.parametrize(
    "args",
    [
        ["funnel", "--json"],
        ["cpl", "--json"],
        ["cpl", "--by", "channel", "--json"],
        ["sla", "--json", "--as-of", "2026-12-31"],
        ["parked", "--json"],
    ],
    ids=lambda args: "-".join(args[:2]),
)
def test_every_report_prints_json(empty_store, args):
    result = CliRunner().invoke(app, args, env={"LIFECYCLE_DATABASE_URL": empty_store})

    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        json.loads(line)


def test_cost_per_lead_and_sla_print_csv_with_a_header(empty_store):
    env = {"LIFECYCLE_DATABASE_URL": empty_store}
    cost = CliRunner().invoke(app, ["cpl", "--csv"], env=env)
    sla = CliRunner().invoke(app, ["sla", "--csv"], env=env)

    assert cost.stdout.splitlines()[0].startswith("group,currency,spend_minor,leads")
    assert sla.stdout.splitlines()[0] == "lead_id,stage,sales_ready_at,first_sales_touch_at"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["nosuch"], "No such command"),
        (["cpl", "--bogus"], "No such option"),
        (["sla", "--hours", "0"], "--hours"),
        (["lead", "show"], "Missing argument"),
        (["cpl", "--json", "--csv"], "choose one"),
        (["funnel", "--since", "2026-11-01", "--until", "2026-10-01"], "--until is before"),
        (["lead", "show", "email:"], "neither a lead id nor an identity"),
        (["funnel", "--since", "2026-02-30"], "not a time of the calendar"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_a_usage_mistake_is_one_line_and_exit_2(empty_store, args, said):
    line = one_line_exit_2(lifecycle(*args, env={"LIFECYCLE_DATABASE_URL": empty_store}))

    assert said in line


@pytest.mark.parametrize(
    "args", [["funnel"], ["cpl"], ["sla"], ["parked"], ["lead", "show", "ann@example.com"]]
)
def test_a_report_where_there_is_no_store_says_so_and_makes_none(tmp_path, args):
    line = one_line_exit_2(lifecycle(*args, cwd=tmp_path))

    assert "no " in line
    assert ".lifecycle/lifecycle.db" in line
    assert not (tmp_path / ".lifecycle" / "lifecycle.db").exists()


def test_serve_on_a_port_in_use_says_so_in_one_line(sqlite_url):
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        line = one_line_exit_2(
            lifecycle("serve", "--port", str(port), env={"LIFECYCLE_DATABASE_URL": sqlite_url})
        )
    finally:
        taken.close()

    assert f"cannot listen on 127.0.0.1:{port}" in line


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory) -> str:
    """The demo's kind of data (its campaign ids, kinds and reasons), 300 people."""
    return projected(
        f"sqlite:///{tmp_path_factory.mktemp('demo-like')}/lifecycle.db", demo_like_events()
    )


UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.mark.parametrize(
    "args",
    [["funnel"], ["cpl"], ["cpl", "--by", "month"], ["sla", "--as-of", "2026-12-31"], ["lead"]],
    ids="-".join,
)
def test_every_report_fits_80_columns_without_cutting_a_value(demo_like, args):
    env = {"LIFECYCLE_DATABASE_URL": demo_like, "COLUMNS": "80"}
    if args == ["lead"]:
        sla = lifecycle("sla", "--json", "--as-of", "2026-12-31", env=env)
        args = ["lead", "show", json.loads(sla.stdout.splitlines()[0])["lead_id"]]
    shown = lifecycle(*args, env=env)

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip()
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    assert "…" not in shown.stdout
    if args[0] == "sla":  # whole lead ids, to paste into `lead show`
        listed = lifecycle("sla", "--json", "--as-of", "2026-12-31", env=env).stdout
        ids = [json.loads(line)["lead_id"] for line in listed.splitlines()]
        assert UUID_TEXT.findall(shown.stdout) == ids
