"""Logging setup: JSON lines in production, pretty output on a terminal, never personal data.

Log calls name fields and reasons, never input values. What an exception says is another
matter: a driver or a decoder may quote the value it choked on (an e-mail in a bad enum, a
name in a bad column). So an exception's message is logged only for the kinds of error whose
messages are known to be made of ids, offsets and connection trouble; for any other kind the
log keeps its type and where it was raised, and the message is withheld. (The dead-letter
topic keeps the full reason next to the message, for whoever may read the message itself.)
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

import psycopg
import structlog
from eventsourcing import persistence
from kafka.errors import KafkaError

from lifecycle import errors

WITHHELD = "(message withheld: it may quote input data)"
# (Not constraint violations: "Failing row contains (...)" and "Key (...)=(...)" quote rows.)

# Errors whose messages are ours or the transport's, never a piece of the input.
_SAFE: tuple[type[BaseException], ...] = (
    KafkaError,
    OSError,
    TimeoutError,
    persistence.OperationalError,
    persistence.InterfaceError,
    persistence.InternalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.InternalError,
    sqlite3.OperationalError,
    errors.ContractError,  # value-free by construction (contracts._validation_error)
    errors.ConfigurationError,
    errors.RulebookError,
    errors.TransientError,
)


def describe(error: BaseException) -> str:
    """What to log of an error: its type, and its message if that cannot hold input data."""
    name = type(error).__name__
    if isinstance(error, _SAFE):
        return f"{name}: {error}" if str(error) else name
    return f"{name} {WITHHELD}"


def _traceback(error: BaseException) -> str:
    """A traceback of the error and its causes, with only the messages ``describe`` keeps."""
    lines: list[str] = []
    seen: set[int] = set()
    chain: list[tuple[BaseException, str | None]] = []
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above was caused by:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "The above happened while handling:"
        else:
            current = None
    for exception, note in chain:
        if note:
            lines.append(note)
        lines.append("Traceback (most recent call last):")
        lines.extend(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}'
            for frame in traceback.extract_tb(exception.__traceback__)
        )
        lines.append(describe(exception))
    return "\n".join(lines)


def render_exceptions_safely(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Turn ``exc_info`` into ``exception``: a traceback without local variables or input."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    error = exc_info if isinstance(exc_info, BaseException) else exc_info[1]
    if error is not None:
        event_dict["exception"] = _traceback(error)
    return event_dict


def configure_logging(log_format: str = "auto", level: int = logging.INFO) -> None:
    """Configure structlog once, at start-up; ``auto`` picks pretty output on a terminal."""
    pretty = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if pretty else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            render_exceptions_safely,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: a logger must follow sys.stderr when it is replaced (tests, embedding);
        # workers log once per batch, so the lookup costs nothing that matters.
        cache_logger_on_first_use=False,
    )
