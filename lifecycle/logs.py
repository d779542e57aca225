"""Logging setup: JSON lines in production, pretty output on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog
import structlog.tracebacks


def configure_logging(log_format: str = "auto", level: int = logging.INFO) -> None:
    """Configure structlog once, at start-up; ``auto`` picks pretty output on a terminal."""
    pretty = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    # Tracebacks never show local variables: they hold messages, and messages personal data.
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
        if pretty
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
            if not pretty
            else structlog.processors.StackInfoRenderer(),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: a logger must follow sys.stderr when it is replaced (tests, embedding);
        # workers log once per batch, so the lookup costs nothing that matters.
        cache_logger_on_first_use=False,
    )
