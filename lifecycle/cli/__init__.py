"""The ``lifecycle`` command.

Exit codes: 0 success; 1 the work was done but some input was rejected, or a lead was not
found; 2 bad usage or settings, or a store or broker that cannot be reached.
"""

import sys

import typer

from lifecycle.cli import demo, ledger, pipeline, privacy, serve, sources, views
from lifecycle.cli.common import app, err

# Typer carries its own click; its usage error is the base of the one it exports.
UsageError: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"
)

__all__ = ["app", "demo", "ledger", "main", "pipeline", "privacy", "serve", "sources", "views"]


def main() -> None:
    """Entry point of the ``lifecycle`` console script.

    A usage error (an unknown command or option, a value out of range) is one line too, as
    every other failure; ``--help`` says the rest.
    """
    try:
        code = app(standalone_mode=False)
    except UsageError as error:
        context = getattr(error, "ctx", None)
        command = context.command_path if context else "lifecycle"
        message = error.format_message()  # type: ignore[attr-defined]
        err.print(f"[red]error:[/red] {message} (see {command} --help)", highlight=False)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
