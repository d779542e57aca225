"""``python -m lifecycle`` runs the CLI."""

from lifecycle.cli import main

main()
