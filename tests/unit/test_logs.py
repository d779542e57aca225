"""Logs never carry personal data, not even in tracebacks."""

from __future__ import annotations

import structlog

from lifecycle.logs import configure_logging


def fail_with_personal_data_in_a_local() -> None:
    profile = {"email": "alice@example.com"}
    raise ValueError(f"{len(profile)} field")


def test_a_logged_traceback_does_not_show_local_variables(capsys):
    configure_logging("json")
    try:
        fail_with_personal_data_in_a_local()
    except ValueError:
        structlog.get_logger().exception("failed")
    finally:
        structlog.reset_defaults()

    logged = capsys.readouterr().err
    assert '"event": "failed"' in logged
    assert "ValueError" in logged
    assert "alice@example.com" not in logged
