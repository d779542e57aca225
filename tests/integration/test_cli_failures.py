"""Every command that cannot work says why in one line and exits 2, never with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
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


def said_in_one_line(result) -> None:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output


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
    env = os.environ | {
        "LIFECYCLE_DATABASE_URL": sqlite_url,
        "LIFECYCLE_KAFKA_BOOTSTRAP": BROKEN_BROKERS[broker],
    }
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", *BROKER_COMMANDS[command]],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")


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
def test_every_report_prints_json(sqlite_url, args):
    result = CliRunner().invoke(app, args, env={"LIFECYCLE_DATABASE_URL": sqlite_url})

    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        json.loads(line)


def test_cost_per_lead_and_sla_print_csv_with_a_header(sqlite_url):
    env = {"LIFECYCLE_DATABASE_URL": sqlite_url}
    cost = CliRunner().invoke(app, ["cpl", "--csv"], env=env)
    sla = CliRunner().invoke(app, ["sla", "--csv"], env=env)

    assert cost.stdout.splitlines()[0].startswith("group,currency,spend_minor,leads")
    assert sla.stdout.splitlines()[0] == "lead_id,stage,sales_ready_at,first_sales_touch_at"
