"""The ``lifecycle`` command.

Exit codes: 0 success; 1 the work was done but some input was rejected, or a lead was not
found; 2 bad usage or settings, or a store or broker that cannot be reached.
"""

from lifecycle.cli import ledger, pipeline, views
from lifecycle.cli.common import app

__all__ = ["app", "ledger", "main", "pipeline", "views"]


def main() -> None:
    """Entry point of the ``lifecycle`` console script."""
    app()
