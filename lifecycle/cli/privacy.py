"""Privacy commands: the master key; forgetting a person, and exporting what is held of them."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from lifecycle.adapters.keyring import new_master_key
from lifecycle.cli.common import app, err, load_settings, open_engine, out, require_store
from lifecycle.ledger.erasure import forget
from lifecycle.ledger.export import encode, export_person

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


@app.command("forget")
def forget_command(
    reference: Annotated[
        str, typer.Argument(help="A lead id, or one of the person's identities (email:...).")
    ],
    suppress: Annotated[
        bool,
        typer.Option(
            "--suppress",
            help="Keep the identities' ids on a suppression list: their later touchpoints are "
            "dropped (and counted), never recorded.",
        ),
    ] = False,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, as a code (a-z, 0-9, _ . -): no free text.")
    ] = "erasure_request",
) -> None:
    """Forget a person for good: their keys destroyed, their identities released.

    Every lead merged into theirs goes too. The figures stay the same; lead show then shows
    their facts with the personal fields as [erased]. Doing it again changes nothing.
    """
    settings = load_settings()
    require_store(settings)
    with open_engine(settings) as engine:
        erasure = forget(
            engine, reference, at=datetime.now(UTC), reason_code=reason, suppress=suppress
        )
    if erasure.already:
        out.print("already forgotten: nothing changed", highlight=False)
        return
    kept = "suppressed" if suppress else "released"
    out.print(
        f"forgot lead {erasure.lead_id} ({len(erasure.lead_ids)} lead(s), "
        f"{erasure.identities} identities {kept}, their keys destroyed)",
        highlight=False,
    )


@app.command("export")
def export_command(
    reference: Annotated[
        str, typer.Argument(help="A lead id, or one of the person's identities (email:...).")
    ],
) -> None:
    """Everything held about a person, as JSON on stdout (access and portability requests)."""
    settings = load_settings()
    require_store(settings)
    with open_engine(settings) as engine:
        document = export_person(engine, reference, at=datetime.now(UTC))
    sys.stdout.buffer.write(encode(document))
