"""The outbound contract of ``lead.events``, and how stored domain events become its messages.

Each message is a binary-mode CloudEvent: the attributes travel in ``ce_*`` headers and the
value is a ``LeadEvent`` as JSON. The key is the lead id (the campaign id for campaign events),
so that all events of one lead stay in order on one partition.

``ce_type`` is ``lifecycle.<aggregate>.<event name>`` (``lifecycle.lead.FactRecorded``,
``lifecycle.campaign.SpendRecorded``); ``ce_id`` is ``<aggregate id>:<version>``, the same on
every redelivery, so consumers drop repeats by it. ``ce_time`` is the event time of the fact
behind the event; events without one (``IdentifierAdded``, campaign ``Created``) use the time
they were recorded.

No personal data leaves: events that carry only personal data or nothing of interest are not
published (lead ``Created`` and ``ProfileUpdated``, ``Identity`` and ``Receipt`` events),
``IdentifierAdded`` publishes the kind of identity but never its value, touchpoint properties
are limited to an allow-list, and the name of the salesperson behind a qualification is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import get_topic
from msgspec import Meta

from lifecycle.domain.facts import Fact, Qualification, Spend, Touch

SPEC_VERSION: Final = "1.0"
SOURCE: Final = "urn:lead-lifecycle:event-store"
CONTENT_TYPE: Final = "application/json"

# The stored topics that are published (and under which aggregate and name). Decided by the
# explicit topic string, so that renaming a class changes nothing on the wire.
PUBLISHED: Final[dict[str, tuple[Literal["lead", "campaign"], str]]] = {
    "lifecycle:Lead.FactRecorded.v1": ("lead", "FactRecorded"),
    "lifecycle:Lead.Captured.v1": ("lead", "Captured"),
    "lifecycle:Lead.IdentifierAdded.v1": ("lead", "IdentifierAdded"),
    "lifecycle:Lead.Absorbed.v1": ("lead", "Absorbed"),
    "lifecycle:Lead.MergedInto.v1": ("lead", "MergedInto"),
    "lifecycle:Lead.Erased.v1": ("lead", "Erased"),
    "lifecycle:Campaign.Created.v1": ("campaign", "Created"),
    "lifecycle:Campaign.SpendRecorded.v1": ("campaign", "SpendRecorded"),
}
PUBLISHED_TOPICS: Final = tuple(PUBLISHED)


class LeadEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The value of a ``lead.events`` message: one lead or campaign event, free of personal data."""

    event: Annotated[
        str,
        Meta(
            description="The event's name: FactRecorded, Captured, IdentifierAdded, Absorbed, "
            "MergedInto, Erased (lead); Created, SpendRecorded (campaign)."
        ),
    ]
    aggregate: Literal["lead", "campaign"]
    aggregate_id: Annotated[
        UUID, Meta(description="The lead id, or the campaign's id (not its upstream id).")
    ]
    version: Annotated[
        int, Meta(description="The aggregate's version after the event: orders a lead's events.")
    ]
    at: Annotated[datetime, Meta(description="The event time, as in ce_time.")]
    fact: Annotated[
        Fact | None, Meta(description="FactRecorded: the touchpoint or (dis)qualification.")
    ] = None
    facts: Annotated[
        list[Fact], Meta(description="Absorbed: the facts taken over from the absorbed lead.")
    ] = []
    fact_id: Annotated[
        str | None, Meta(description="Captured, Absorbed, MergedInto: the fact that caused it.")
    ] = None
    absorbed_lead_id: Annotated[
        UUID | None, Meta(description="Absorbed: the lead merged into this one.")
    ] = None
    merged_into: Annotated[
        UUID | None, Meta(description="MergedInto: the lead that absorbed this one.")
    ] = None
    identity_kind: Annotated[
        str | None,
        Meta(description="IdentifierAdded: email, phone, customer or anonymous; never the value."),
    ] = None
    campaign_key: Annotated[
        str | None, Meta(description="Campaign events: the campaign's upstream id.")
    ] = None
    spend: Annotated[
        Spend | None, Meta(description="SpendRecorded: the money spent and its period.")
    ] = None
    reason_code: Annotated[
        str | None,
        Meta(description="Erased: why the person was forgotten, as a code (erase them too)."),
    ] = None


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(LeadEvent)


def decode_lead_event(value: bytes) -> LeadEvent:
    """Read the value of a ``lead.events`` message."""
    return _DECODER.decode(value)


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One ``lead.events`` message, ready to send."""

    key: bytes
    value: bytes
    ce_id: str
    ce_type: str
    ce_time: str
    ce_source: str = SOURCE

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """The binary-mode CloudEvent headers."""
        return [
            ("ce_specversion", SPEC_VERSION.encode()),
            ("ce_id", self.ce_id.encode()),
            ("ce_source", self.ce_source.encode()),
            ("ce_type", self.ce_type.encode()),
            ("ce_time", self.ce_time.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]


def public_fact(fact: Fact, published_properties: Collection[str]) -> Fact:
    """The fact without free text that may name a person.

    That is unlisted properties, the assessor's name, and a disqualification's reason (free
    text typed by sales: it stays in the store).
    """
    if isinstance(fact, Touch):
        if all(k in published_properties for k in fact.properties):
            return fact
        kept = {k: v for k, v in fact.properties.items() if k in published_properties}
        return msgspec.structs.replace(fact, properties=kept)
    if isinstance(fact, Qualification):
        return msgspec.structs.replace(fact, assessed_by=None)
    return msgspec.structs.replace(fact, reason="")


def to_lead_event(
    event: DomainEventProtocol[UUID],
    *,
    published_properties: Collection[str],
    campaign_key: Callable[[UUID], str | None] = lambda _: None,
    source: str = SOURCE,
) -> Outgoing | None:
    """The message for a stored domain event, or None if that kind of event is not published.

    ``campaign_key`` finds a campaign's upstream id (spend events do not repeat it).
    """
    payload = lead_event(
        event, published_properties=published_properties, campaign_key=campaign_key
    )
    if payload is None:
        return None
    return Outgoing(
        key=str(payload.aggregate_id).encode(),
        value=_ENCODER.encode(payload),
        ce_id=f"{payload.aggregate_id}:{payload.version}",
        ce_type=f"lifecycle.{payload.aggregate}.{payload.event}",
        ce_time=rfc3339(payload.at),
        ce_source=source,
    )


def lead_event(
    event: DomainEventProtocol[UUID],
    *,
    published_properties: Collection[str],
    campaign_key: Callable[[UUID], str | None] = lambda _: None,
) -> LeadEvent | None:
    """The payload for a stored domain event, or None if that kind of event is not published."""
    published = PUBLISHED.get(get_topic(type(event)))
    if published is None:
        return None
    aggregate, name = published
    details = _details(name, event, published_properties, campaign_key)
    return LeadEvent(
        event=name,
        aggregate=aggregate,
        aggregate_id=event.originator_id,
        version=event.originator_version,
        **details,
    )


def _details(  # noqa: PLR0911 (one return per published event)
    name: str,
    event: Any,  # noqa: ANN401 (stored events are typed by their topic, not their class)
    keep: Collection[str],
    campaign_key: Callable[[UUID], str | None],
) -> dict[str, Any]:
    if name == "FactRecorded":
        return {"at": event.fact.at, "fact": public_fact(event.fact, keep)}
    if name == "Captured":
        return {"at": event.at, "fact_id": event.fact_id}
    if name == "IdentifierAdded":
        return {"at": event.timestamp, "identity_kind": event.kind}
    if name == "Absorbed":
        return {
            "at": event.at,
            "fact_id": event.fact_id,
            "absorbed_lead_id": event.lead_id,
            "facts": [public_fact(fact, keep) for fact in event.facts],
        }
    if name == "MergedInto":
        return {"at": event.at, "fact_id": event.fact_id, "merged_into": event.survivor_id}
    if name == "Erased":
        return {"at": event.at, "reason_code": event.reason_code}
    if name == "Created":
        return {"at": event.timestamp, "campaign_key": event.key}
    return {
        "at": event.spend.at,
        "spend": event.spend,
        "campaign_key": campaign_key(event.originator_id),
    }


def rfc3339(at: datetime) -> str:
    """An instant as RFC 3339 in UTC, e.g. ``2026-03-02T09:00:00Z`` (as in the payload)."""
    return msgspec.json.encode(at.astimezone(UTC)).decode().strip('"')
