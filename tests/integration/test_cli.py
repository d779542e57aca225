"""The ``lifecycle`` command: import with rejected-line reports, lead show, schemas, demo."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lifecycle.cli import app


@pytest.fixture
def run(database_url):
    if database_url.startswith("sqlite:///"):  # a store, empty (reports refuse a missing file)
        sqlite3.connect(database_url.removeprefix("sqlite:///")).close()
    runner = CliRunner()

    def invoke(*args: str, stdin: bytes | None = None):
        return runner.invoke(
            app, list(args), input=stdin, env={"LIFECYCLE_DATABASE_URL": database_url}
        )

    return invoke


@pytest.fixture
def history_file(tmp_path, events):
    lines = [
        events.encode(events.touchpoint("form_fill", 0, email="ann@example.com")),
        b'{"specversion": "1.0", "id": "broken"',
        events.encode(events.touchpoint("demo_request", 2, email="ann@example.com")),
        events.encode(events.touchpoint("sneeze", 3, email="ann@example.com")),
        b"",
        events.encode(
            events.touchpoint(
                "purchase", 4, email="ann@example.com", amount_minor=500, currency="EUR"
            )
        ),
    ]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_import_records_valid_lines_and_reports_rejected_ones_by_line_number(
    run, history_file, tmp_path
):
    rejects = tmp_path / "rejects.jsonl"
    result = run("import", str(history_file), "--rejects", str(rejects))

    assert result.exit_code == 1
    assert "3 recorded, 0 already recorded, 2 rejected" in result.output
    assert "line 2: not valid JSON" in result.output
    assert "line 4: not an allowed value; expected one of page_view" in result.output
    reported = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["field"]) for r in reported] == [(2, "$"), (4, "$.data.kind")]
    shown = run("lead", "show", "email:ann@example.com", "--json")
    assert json.loads(shown.stdout)["stage"] == "customer"


def test_importing_the_same_file_twice_changes_nothing(run, history_file):
    run("import", str(history_file))
    again = run("import", str(history_file))

    assert "0 recorded, 3 already recorded, 2 rejected" in again.output
    timeline = json.loads(run("lead", "show", "email:ann@example.com", "--json").stdout)["timeline"]
    assert [entry["what"] for entry in timeline] == ["form_fill", "demo_request", "purchase"]


def test_import_reads_standard_input(run, events):
    lines = events.encode(events.touchpoint("newsletter_signup", 0, email="bo@example.com"))

    result = run("import", "-", stdin=lines + b"\n")

    assert result.exit_code == 0, result.output
    assert "1 recorded" in result.output


def test_lead_show_folds_the_lead_as_of_the_given_time(run, history_file, events):
    run("import", str(history_file))

    before = json.loads(
        run(
            "lead", "show", "email:ann@example.com", "--json", "--as-of", events.at(1).isoformat()
        ).stdout
    )
    after = run("lead", "show", "email:ann@example.com", "--as-of", events.at(5).isoformat())

    assert before["stage"] == "lead"
    assert [entry["what"] for entry in before["timeline"]] == ["form_fill"]
    assert after.exit_code == 0
    assert "customer" in after.stdout
    assert "Stage history" in after.stdout


def test_lead_show_for_an_unknown_lead_exits_1_with_a_readable_message(run):
    result = run("lead", "show", "email:nobody@example.com")

    assert result.exit_code == 1
    assert "no lead has email 'nobody@example.com'" in result.output


def test_an_unusable_database_url_exits_2_and_says_why():
    result = CliRunner().invoke(
        app, ["lead", "show", "email:a@example.com"], env={"LIFECYCLE_DATABASE_URL": "mysql://x"}
    )

    assert result.exit_code == 2
    assert "unsupported database URL" in result.output


def test_a_views_url_with_a_parameter_nobody_reads_is_refused_as_the_event_store_url_is(tmp_path):
    views = tmp_path / "views.db"
    views.touch()

    result = CliRunner().invoke(
        app, ["funnel"], env={"LIFECYCLE_VIEWS_URL": f"sqlite:///{views}?sslmode=require"}
    )

    assert result.exit_code == 2
    assert "unsupported parameter(s) sslmode" in result.output


def test_a_broken_rulebook_exits_2_and_says_why(run, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('rules_version = "mine"\n[engagement.points]\nsneeze = 3\n')

    result = run("lead", "show", "email:a@example.com", "--rules", str(rules))

    assert result.exit_code == 2
    assert "unknown touchpoint kind(s) sneeze" in result.output


def test_the_schema_files_are_reported_up_to_date():
    result = CliRunner().invoke(app, ["schemas", "check"])

    assert result.exit_code == 0, result.output


def test_the_command_runs_as_a_module_with_help():
    result = subprocess.run(
        [sys.executable, "-m", "lifecycle", "--help"], capture_output=True, check=False, timeout=60
    )

    assert result.returncode == 0
    assert b"import" in result.stdout
    assert b"lead" in result.stdout


def test_a_corrupt_gzip_file_is_reported_without_a_traceback(run, tmp_path):
    broken = tmp_path / "history.jsonl.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00not really gzip")

    result = run("import", str(broken))

    assert result.exit_code == 2
    assert f"cannot read {broken}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test?sslmode", "unsupported parameter(s) sslmode"),
        ("postgresql://postgres@127.0.0.1:port/test", "bad port"),
        ("postgresql://postgres@127.0.0.1:1/test?connect_timeout=1", "cannot open the event store"),
    ],
)
def test_an_unusable_postgresql_url_exits_2_and_says_why(url, message):
    result = CliRunner().invoke(
        app, ["lead", "show", "email:a@example.com"], env={"LIFECYCLE_DATABASE_URL": url}
    )

    assert result.exit_code == 2
    assert message in result.output


def test_webhooks_without_an_endpoints_file_exit_2_saying_what_to_set():
    result = CliRunner().invoke(app, ["webhooks"], env={"LIFECYCLE_WEBHOOKS": ""})

    assert result.exit_code == 2
    assert "set LIFECYCLE_WEBHOOKS" in result.output


def test_a_broken_endpoints_file_exits_2_in_one_line(tmp_path):
    broken = tmp_path / "webhooks.toml"
    broken.write_text('[[endpoint]]\nname = "crm"\nurl = "ftp://x"\n')

    result = CliRunner().invoke(app, ["webhooks"], env={"LIFECYCLE_WEBHOOKS": str(broken)})

    assert result.exit_code == 2
    assert "url must be an http(s) URL" in result.output
    assert "Traceback" not in result.output
