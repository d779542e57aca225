"""Event-sourced aggregates: facts only, no interpretation, no I/O."""

from lifecycle.aggregates.campaign import Campaign
from lifecycle.aggregates.identity import Identity
from lifecycle.aggregates.lead import Lead
from lifecycle.aggregates.receipt import Receipt

__all__ = ["Campaign", "Identity", "Lead", "Receipt"]
