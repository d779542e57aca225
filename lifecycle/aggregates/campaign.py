"""Campaign: what was spent on it, each spend recorded once."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.domain.facts import Spend


class Campaign(Aggregate):
    """An upstream campaign (its own id is ``key``) and its spend."""

    TOPIC = "lifecycle:Campaign"

    @event("Created", topic="lifecycle:Campaign.Created.v1")
    def __init__(self, id: UUID, key: str) -> None:  # noqa: A002 (eventsourcing names it id)
        self.key = key
        self.spend: list[Spend] = []
        self.spend_ids: set[str] = set()

    class SpendRecorded(Aggregate.Event):
        """Money spent on the campaign over a period."""

        TOPIC = "lifecycle:Campaign.SpendRecorded.v1"
        spend: Spend

        def apply(self, campaign: Campaign) -> None:
            campaign.spend.append(self.spend)
            campaign.spend_ids.add(self.spend.fact_id)

    def record_spend(self, spend: Spend) -> bool:
        """Record a spend unless this event was recorded before; say whether it was new."""
        if spend.fact_id in self.spend_ids:
            return False
        self.trigger_event(self.SpendRecorded, spend=spend)
        return True
