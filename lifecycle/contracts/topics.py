"""The engine's Kafka topics: the one place their default names are written.

``Settings`` takes its defaults from here (each name can be changed with a ``LIFECYCLE_*``
variable); the schema documents, the bundled broker and the bench name the same constants.
"""

from __future__ import annotations

from typing import Final

TOUCHPOINTS: Final = "lead.touchpoints"
"""Inbound CloudEvents from the upstream systems."""
DEAD_LETTERS: Final = "lead.touchpoints.dlq"
"""Messages from ``TOUCHPOINTS`` that break the contract, with why."""
LEAD_EVENTS: Final = "lead.events"
"""The stored lead and campaign events, in order, free of personal data."""
CHANGES: Final = "lead.lifecycle"
"""What the engine decided about each lead: stage and temperature changes, overdue hand-offs."""
WEBHOOK_DEAD_LETTERS: Final = "lead.lifecycle.webhooks.dlq"
"""Changes an endpoint did not take, with the endpoint and its last status."""
ENGINE_TOPICS: Final = (TOUCHPOINTS, DEAD_LETTERS, LEAD_EVENTS, CHANGES)
