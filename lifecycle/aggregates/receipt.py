"""Receipt: an inbound CloudEvent was recorded.

Its id is the event's fact id (the uuid5 of its ``(source, id)``), so the event store itself
refuses to record the same CloudEvent twice, whichever lead or campaign it names.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Receipt(Aggregate):
    """Proof that one CloudEvent was recorded."""

    TOPIC = "lifecycle:Receipt"

    @event("Created", topic="lifecycle:Receipt.Created.v1")
    def __init__(self, id: UUID) -> None:  # noqa: A002 (eventsourcing names it id)
        """The id is all a receipt holds."""
