"""Wire contracts: inbound CloudEvents 1.0 on ``lead.touchpoints``, as msgspec Structs.

Both CloudEvents Kafka modes are accepted: structured (the value is the whole event) and
binary (the value is ``data``; attributes travel in ``ce_*`` headers). The ``time``
attribute is the event time every rule uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from lifecycle.errors import ContractError
from lifecycle.vocabulary import Channel, Kind, Seniority

MAX_MESSAGE_BYTES: Final = 256 * 1024
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
# Amounts fit a signed 64-bit column after summing many of them.
MAX_AMOUNT_MINOR: Final = 10**15
# Event times outside these years are typos (and overflow date arithmetic).
EARLIEST_YEAR: Final = 1970
LATEST_YEAR: Final = 2999

NonEmpty = Annotated[
    str, msgspec.Meta(min_length=1, max_length=512, pattern=r"\S", description="Not blank.")
]
Email = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$",
        max_length=320,
        description="Compared case-insensitively after trimming.",
    ),
]
Phone = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\s*\+?(?:[ ().\-]*[0-9]){6,15}[ ().\-]*\s*$",
        description="6 to 15 digits; compared by its digits, with a leading +.",
    ),
]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")]
AwareDatetime = Annotated[
    datetime, msgspec.Meta(tz=True, description="RFC 3339 with an offset; the event time.")
]
PropertyValue = str | int | float | bool


class _Contract(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """Base of wire structs: immutable, keyword-only, and unknown fields are ignored."""


class Identity(_Contract, frozen=True, kw_only=True):
    """Who the event is about: at least one of these."""

    email: Email | None = None
    phone: Phone | None = None
    anonymous_id: NonEmpty | None = None
    customer_id: NonEmpty | None = None

    def __post_init__(self) -> None:
        if not (self.email or self.phone or self.anonymous_id or self.customer_id):
            raise ValueError("needs at least one of email, phone, anonymous_id, customer_id")


class TouchpointCampaign(_Contract, frozen=True, kw_only=True):
    """The campaign that brought the touchpoint (UTM-style)."""

    id: NonEmpty
    channel: Channel
    source: str | None = None
    medium: str | None = None


class Profile(_Contract, frozen=True, kw_only=True):
    """What the lead told us about themselves; the latest values win."""

    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    seniority: Seniority | None = None
    company_size: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None
    country: Country | None = None


class Referrer(_Contract, frozen=True, kw_only=True):
    """The customer who referred the lead (kind ``referral``)."""

    email: Email | None = None
    customer_id: NonEmpty | None = None

    def __post_init__(self) -> None:
        if not (self.email or self.customer_id):
            raise ValueError("needs email or customer_id")


class Touchpoint(_Contract, frozen=True, kw_only=True):
    """``data`` of a ``lead.touchpoint`` event."""

    kind: Kind
    identity: Identity
    campaign: TouchpointCampaign | None = None
    profile: Profile | None = None
    referrer: Referrer | None = None
    amount_minor: Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT_MINOR)] | None = None
    currency: Currency | None = None
    properties: Annotated[dict[str, PropertyValue], msgspec.Meta(max_length=64)] = {}

    def __post_init__(self) -> None:
        if self.referrer is not None and self.kind != "referral":
            raise ValueError("referrer is only allowed on kind 'referral'")
        if (self.amount_minor is not None or self.currency is not None) and (
            self.kind != "purchase"
        ):
            raise ValueError("amount_minor and currency are only allowed on kind 'purchase'")
        if (self.amount_minor is None) != (self.currency is None):
            raise ValueError("amount_minor and currency go together")


class Qualification(_Contract, frozen=True, kw_only=True):
    """``data`` of a ``lead.qualification`` event: a BANT assessment by sales."""

    identity: Identity
    need: bool
    budget: bool
    authority: bool
    timeline: bool
    assessed_by: str | None = None


class Disqualification(_Contract, frozen=True, kw_only=True):
    """``data`` of a ``lead.disqualification`` event."""

    identity: Identity
    reason: NonEmpty


class SpendCampaign(_Contract, frozen=True, kw_only=True):
    """The campaign money was spent on."""

    id: NonEmpty
    channel: Channel


class Spend(_Contract, frozen=True, kw_only=True):
    """``data`` of a ``campaign.spend`` event."""

    campaign: SpendCampaign
    amount_minor: Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT_MINOR)]
    currency: Currency
    period_start: date
    period_end: date

    def __post_init__(self) -> None:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")


class _CloudEvent(_Contract, frozen=True, kw_only=True, tag_field="type"):
    specversion: Literal["1.0"]
    id: NonEmpty
    source: NonEmpty
    time: AwareDatetime
    datacontenttype: str | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if not EARLIEST_YEAR <= self.time.year <= LATEST_YEAR:
            raise ValueError(f"time must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")


class TouchpointEvent(_CloudEvent, frozen=True, kw_only=True, tag="lead.touchpoint"):
    """A touchpoint: the person did something."""

    data: Touchpoint


class QualificationEvent(_CloudEvent, frozen=True, kw_only=True, tag="lead.qualification"):
    """Sales qualified the lead by BANT."""

    data: Qualification


class DisqualificationEvent(_CloudEvent, frozen=True, kw_only=True, tag="lead.disqualification"):
    """Sales disqualified the lead."""

    data: Disqualification


class SpendEvent(_CloudEvent, frozen=True, kw_only=True, tag="campaign.spend"):
    """Money spent on a campaign over a period."""

    data: Spend


InboundEvent = TouchpointEvent | QualificationEvent | DisqualificationEvent | SpendEvent
EVENT_CLASSES: Final = (TouchpointEvent, QualificationEvent, DisqualificationEvent, SpendEvent)
EVENT_TYPES: Final = tuple(str(cls.__struct_config__.tag) for cls in EVENT_CLASSES)

_STRUCTURED: Final = msgspec.json.Decoder(InboundEvent)
_JSON: Final = msgspec.json.Decoder()
_ATTRIBUTE_HEADERS: Final = ("specversion", "id", "source", "type", "time", "subject")


def _validation_error(error: msgspec.ValidationError | msgspec.DecodeError) -> ContractError:
    # msgspec reports "reason - at `$.data.kind`"; split it so callers can name the field.
    message = str(error)
    reason, sep, where = message.rpartition(" - at `")
    if not sep:
        return ContractError(message)
    field = where.rstrip("`")
    if field == "$.type":
        reason = f"{reason}: unknown event type; expected one of {', '.join(EVENT_TYPES)}"
    return ContractError(reason, field=field)


def _check_size(value: bytes) -> None:
    if len(value) > MAX_MESSAGE_BYTES:
        raise ContractError(
            f"message is {len(value)} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes"
        )


def decode_structured(value: bytes) -> InboundEvent:
    """Decode a structured-mode CloudEvent (the value is the whole event)."""
    _check_size(value)
    try:
        event: InboundEvent = _STRUCTURED.decode(value)
    except msgspec.ValidationError as error:
        raise _validation_error(error) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ContractError(f"not valid JSON: {error}") from None
    return event


def decode_binary(headers: Mapping[str, bytes | str | None], value: bytes) -> InboundEvent:
    """Decode a binary-mode CloudEvent: ``data`` in the value, attributes in ``ce_*`` headers."""
    _check_size(value)
    try:
        data = _JSON.decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        raise ContractError(f"data is not valid JSON: {error}") from None
    event: dict[str, Any] = {"data": data}
    for name in _ATTRIBUTE_HEADERS:
        raw = headers.get(f"ce_{name}")
        if raw is not None:
            event[name] = _header_text(raw, f"ce_{name}")
    try:
        converted: InboundEvent = msgspec.convert(event, InboundEvent)
    except msgspec.ValidationError as error:
        raise _validation_error(error) from None
    return converted


def _header_text(raw: bytes | str | None, name: str) -> str:
    if raw is None:
        raise ContractError("header has no value", field=name)
    if isinstance(raw, str):
        return raw
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise ContractError("header is not UTF-8", field=name) from None


def decode_message(value: bytes | None, headers: list[tuple[str, bytes | str]]) -> InboundEvent:
    """Decode a Kafka message in whichever CloudEvents mode it uses.

    Structured mode is announced by its content type; otherwise a ``ce_specversion`` header
    means binary mode, and a message with neither is read as structured.
    """
    if value is None:
        raise ContractError("message has no value")
    named = dict(headers)
    content_type = _header_text(named.get("content-type", b""), "content-type")
    if "ce_specversion" in named and not content_type.startswith(STRUCTURED_CONTENT_TYPE):
        return decode_binary(named, value)
    return decode_structured(value)


def event_key(event: InboundEvent) -> tuple[str, str]:
    """``(source, id)`` identifies a CloudEvent: seen twice, recorded once."""
    return (event.source, event.id)
