"""The outbound contract of ``lead.lifecycle``: what the engine decided about a lead.

Each message is a binary-mode CloudEvent (attributes in ``ce_*`` headers, the data as JSON in
the value), keyed by the lead id so that one lead's changes stay in order on one partition.
The engine announces state, not history: for each lead it keeps what it last announced and
announces the difference when the rulebook's answer changes. ``at`` is the instant of the
change in event time (for cooling, the instant the lead cooled, not when it was noticed);
``observed_at`` is when the engine saw it. ``ce_id`` is derived from what is announced, so a
redelivery carries the same id and consumers drop repeats by it.

No personal data: lead ids, stages, temperatures, instants, fact ids and kinds only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Final, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from lifecycle.domain.vocabulary import Stage, Temperature

SOURCE: Final = "urn:lead-lifecycle:views"
TYPE_PREFIX: Final = "lifecycle.lead."


class _Change(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    lead_id: Annotated[UUID, Meta(description="The lead (the survivor, for Merged).")]
    at: Annotated[datetime, Meta(description="When it changed, in event time (= ce_time).")]
    observed_at: Annotated[datetime, Meta(description="When the engine saw the change.")]


class StageChanged(_Change, frozen=True, kw_only=True, rename={"from_": "from"}):
    """The lead's lifecycle stage changed (``from`` null: a new lead)."""

    from_: Stage | None
    to: Stage
    cause_fact_id: Annotated[
        str | None, Meta(description="The fact that moved the lead (null for a rules change).")
    ]
    cause_kind: Annotated[
        str,
        Meta(
            description="The touchpoint kind, qualification or disqualification of that fact, "
            "or rules when a replay under new rules moved the lead."
        ),
    ]
    rules_version: str


class TemperatureChanged(_Change, frozen=True, kw_only=True, rename={"from_": "from"}):
    """The lead got hotter with a fact, or cooled down with time (``from`` null: new lead)."""

    from_: Temperature | None
    to: Temperature
    cause: Annotated[
        Literal["fact", "time", "rules"],
        Meta(description="A fact, time passing, or a replay under new rules."),
    ]
    rules_version: str


class HandoffOverdue(_Change, frozen=True, kw_only=True):
    """A sales-ready lead no salesperson touched within the hand-off time."""

    stage: Stage
    sales_ready_at: datetime
    due_at: Annotated[datetime, Meta(description="sales_ready_at + hours (= at).")]
    hours: int


class HandoffOverdueWithdrawn(_Change, frozen=True, kw_only=True):
    """An overdue hand-off that was not: a fact that came late shows a sales touch in time.

    The lead is still sales-ready (a lead that moved on is told by its ``StageChanged``).
    """

    stage: Stage
    sales_ready_at: Annotated[datetime, Meta(description="As in the HandoffOverdue withdrawn.")]
    sales_touch_at: Annotated[
        datetime | None,
        Meta(description="The sales touch within the hand-off time (= at); null for rules."),
    ]
    cause: Annotated[
        Literal["fact", "rules"], Meta(description="A late fact, or a replay under new rules.")
    ]


class Erased(_Change, frozen=True, kw_only=True):
    """The person was forgotten: erase what you hold of ``lead_id`` (its figures stay here)."""


class Merged(_Change, frozen=True, kw_only=True):
    """Leads turned out to be one person: ``lead_id`` survives, the others are merged into it."""

    merged_lead_ids: list[UUID]


Change = (
    StageChanged | TemperatureChanged | HandoffOverdue | HandoffOverdueWithdrawn | Merged | Erased
)
CHANGE_TYPES: Final = (
    StageChanged,
    TemperatureChanged,
    HandoffOverdue,
    HandoffOverdueWithdrawn,
    Merged,
    Erased,
)

_ENCODER: Final = msgspec.json.Encoder()
_DECODERS: Final[dict[str, msgspec.json.Decoder[Change]]] = {
    cls.__name__: msgspec.json.Decoder(cls) for cls in CHANGE_TYPES
}


def ce_type(change: Change) -> str:
    """``lifecycle.lead.StageChanged`` and so on."""
    return f"{TYPE_PREFIX}{type(change).__name__}"


def encode(change: Change) -> bytes:
    """The message value."""
    return _ENCODER.encode(change)


def decode(type_name: str, value: bytes) -> Change:
    """A message value, by its ``ce_type`` (or the bare type name)."""
    change: Change = _DECODERS[type_name.removeprefix(TYPE_PREFIX)].decode(value)
    return change


def change_id(change: Change, rules_version: str) -> str:
    """The ``ce_id``: the same for the same announcement, however often it is made or sent.

    Of the lead, the type, the new value, its instant and the rules version: ``observed_at``
    is left out, so announcing again what was announced gives the same id.
    """
    value: object
    match change:
        case StageChanged():
            value = change.to.value
        case TemperatureChanged():
            value = change.to.value
        case HandoffOverdue():
            value = change.stage.value
        case HandoffOverdueWithdrawn():
            value = change.sales_ready_at.isoformat()
        case Merged():
            value = ",".join(sorted(str(lead) for lead in change.merged_lead_ids))
        case Erased():
            value = "erased"
    text = "|".join(
        (
            str(change.lead_id),
            type(change).__name__,
            str(value),
            change.at.isoformat(),
            rules_version,
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]
