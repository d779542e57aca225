"""Identity: one normalized e-mail, phone, anonymous or customer id, owned by one lead.

Creating it claims the key. Its id is the uuid5 of the key (see ``lifecycle.identity``),
so two writers that claim the same key collide in the event store and one of them retries.
The key itself is not stored: it is personal data, and the id is all a lookup needs. When the
person is forgotten the key is released (it names nobody; a new fact with it starts a new
lead), or suppressed (its facts are dropped).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Identity(Aggregate):
    """Which lead a key belongs to."""

    TOPIC = "lifecycle:Identity"

    @event("Created", topic="lifecycle:Identity.Created.v1")
    def __init__(self, id: UUID, lead_id: UUID) -> None:  # noqa: A002 (eventsourcing names it id)
        self.lead_id: UUID | None = lead_id
        self.suppressed = False

    class Reassigned(Aggregate.Event):
        """The key now belongs to the lead that absorbed its previous owner."""

        TOPIC = "lifecycle:Identity.Reassigned.v1"
        lead_id: UUID

        def apply(self, identity: Identity) -> None:
            identity.lead_id = self.lead_id

    class Released(Aggregate.Event):
        """The person was forgotten: the key names nobody (and, suppressed, takes no facts)."""

        TOPIC = "lifecycle:Identity.Released.v1"
        suppressed: bool

        def apply(self, identity: Identity) -> None:
            identity.lead_id = None
            identity.suppressed = self.suppressed

    def reassign(self, lead_id: UUID) -> None:
        """Point the key at the lead that absorbed its previous owner (or a new one)."""
        if lead_id != self.lead_id:
            self.trigger_event(self.Reassigned, lead_id=lead_id)

    def release(self, *, suppress: bool) -> None:
        """Free the key of a forgotten person; suppressed, its later facts are dropped."""
        if self.lead_id is not None or suppress != self.suppressed:
            self.trigger_event(self.Released, suppressed=suppress)
