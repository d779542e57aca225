"""The ``lifecycle`` command.

Exit codes: 0 success; 1 the work was done but some input was rejected, or a lead was not
found; 2 bad usage or settings, or a store or broker that cannot be reached.
"""

from lifecycle.cli import demo, ledger, pipeline, serve, views
from lifecycle.cli.common import app

__all__ = ["app", "demo", "ledger", "main", "pipeline", "serve", "views"]


def main() -> None:
    """Entry point of the ``lifecycle`` console script."""
    app()
