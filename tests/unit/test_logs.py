"""Logs never carry personal data, not even in tracebacks."""

from __future__ import annotations

import json

import structlog

from lifecycle.adapters.logs import WITHHELD, configure_logging, describe
from lifecycle.errors import ContractError


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


class QuotingError(Exception):
    """Stands for a decoder or driver error that quotes the value it choked on."""


def choke_on(value: str) -> None:
    raise QuotingError(f"invalid input value {value!r}")


def decode_a_bad_value() -> None:
    try:
        choke_on("alice@example.com")
    except QuotingError as error:
        raise RuntimeError("while handling bob@example.com") from error


def test_an_exception_that_may_quote_input_is_logged_with_its_type_and_frames_only(capsys):
    configure_logging("json")
    try:
        decode_a_bad_value()
    except RuntimeError:
        structlog.get_logger().exception("failed")
    finally:
        structlog.reset_defaults()

    logged = json.loads(capsys.readouterr().err)
    assert "QuotingError" in logged["exception"]
    assert "RuntimeError" in logged["exception"]
    assert "test_logs.py" in logged["exception"]
    assert "@example.com" not in logged["exception"]


def test_connection_and_contract_errors_keep_their_messages():
    assert describe(ContractError("not an allowed value", field="$.data.kind")) == (
        "ContractError: not an allowed value (at $.data.kind)"
    )
    assert describe(ConnectionRefusedError(111, "Connection refused")).startswith(
        "ConnectionRefusedError: [Errno 111]"
    )
    assert describe(KeyError("carol@example.com")) == f"KeyError {WITHHELD}"
    assert describe(ValueError("dave@example.com")) == f"ValueError {WITHHELD}"
