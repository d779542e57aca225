"""Identity: one normalized e-mail, phone, anonymous or customer id, owned by one lead.

Creating it claims the key. Its id is the uuid5 of the key (see ``lifecycle.identity``),
so two writers that claim the same key collide in the event store and one of them retries.
The key itself is not stored: it is personal data, and the id is all a lookup needs.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Identity(Aggregate):
    """Which lead a key belongs to."""

    TOPIC = "lifecycle:Identity"

    @event("Created", topic="lifecycle:Identity.Created.v1")
    def __init__(self, id: UUID, lead_id: UUID) -> None:  # noqa: A002 (eventsourcing names it id)
        self.lead_id = lead_id

    class Reassigned(Aggregate.Event):
        """The key now belongs to the lead that absorbed its previous owner."""

        TOPIC = "lifecycle:Identity.Reassigned.v1"
        lead_id: UUID

        def apply(self, identity: Identity) -> None:
            identity.lead_id = self.lead_id

    def reassign(self, lead_id: UUID) -> None:
        """Point the key at the lead that absorbed its previous owner."""
        if lead_id != self.lead_id:
            self.trigger_event(self.Reassigned, lead_id=lead_id)
