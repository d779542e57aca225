"""Receipt: an inbound CloudEvent was recorded.

Its id is the event's fact id (the uuid5 of its ``(source, id)``), so the event store itself
refuses to record the same CloudEvent twice, whichever lead or campaign it names.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.utils import get_topic


class Receipt(Aggregate):
    """Proof that one CloudEvent was recorded."""

    TOPIC = "lifecycle:Receipt"

    @event("Created", topic="lifecycle:Receipt.Created.v1")
    def __init__(self, id: UUID) -> None:  # noqa: A002 (eventsourcing names it id)
        """The id is all a receipt holds."""

    @classmethod
    def issue(cls, receipt_id: UUID) -> DomainEventProtocol[UUID]:
        """A receipt's only event, without building the aggregate (nothing reads it back).

        Ingest issues one per touchpoint: building the aggregate first cost ten times more.
        """
        # (Created is made by the @event decorator on __init__.)
        created: Any = cls.Created
        event: DomainEventProtocol[UUID] = created(
            originator_id=receipt_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=created.create_timestamp(),
            originator_topic=get_topic(cls),
        )
        return event
