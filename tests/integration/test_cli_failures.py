"""Every command that cannot work says why in one line and exits 2, never with a traceback."""

from __future__ import annotations

import json
import os

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
}


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


@pytest.mark.postgres
@pytest.mark.parametrize("store", list(BROKEN_STORES))
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_that_cannot_reach_its_store_says_why_in_one_line_and_exits_2(
    cli, store, command
):
    result = cli(COMMANDS[command], BROKEN_STORES[store])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output


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
