"""Campaign: what was spent on it, each spend recorded once."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.facts import Spend


class Campaign(Aggregate):
    """An upstream campaign (its own id is ``key``) and its spend."""

    TOPIC = "lifecycle:Campaign"

    @event("Created", topic="lifecycle:Campaign.Created.v1")
    def __init__(self, id: UUID, key: str) -> None:  # noqa: A002 (eventsourcing names it id)
        self.key = key
        self.spend: list[Spend] = []
        self.spend_ids: set[str] = set()

    def record_spend(self, spend: Spend) -> bool:
        """Record a spend unless this event was recorded before; say whether it was new."""
        if spend.fact_id in self.spend_ids:
            return False
        self._spend_recorded(spend=spend)
        return True

    @event("SpendRecorded", topic="lifecycle:Campaign.SpendRecorded.v1")
    def _spend_recorded(self, spend: Spend) -> None:
        self.spend.append(spend)
        self.spend_ids.add(spend.fact_id)
