"""Privacy commands: the master key that wraps the leads' data keys."""

from __future__ import annotations

import typer

from lifecycle.adapters.keyring import new_master_key
from lifecycle.cli.common import app, err, out

keys_app = typer.Typer(help="The master key that wraps each lead's data key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create() -> None:
    """Print a new master key (for LIFECYCLE_MASTER_KEY, or a file named by _FILE).

    Keep it as a secret: without it, the personal data of the store cannot be read. Set it
    before the first touchpoint; a store made without one stays in clear.
    """
    out.print(new_master_key(), markup=False, highlight=False)
    err.print(
        "keep it secret; set LIFECYCLE_MASTER_KEY (or LIFECYCLE_MASTER_KEY_FILE) to it",
        highlight=False,
    )
