"""Wire contracts: inbound CloudEvents 1.0 on ``lead.touchpoints``, as msgspec Structs.

Both CloudEvents Kafka modes are accepted: structured (the value is the whole event) and
binary (the value is ``data``; attributes travel in ``ce_*`` headers). The ``time``
attribute is the event time every rule uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal

import msgspec

from lifecycle.domain.instants import EARLIEST_YEAR, LATEST_YEAR
from lifecycle.domain.vocabulary import CHANNELS, KINDS, SENIORITIES, Channel, Kind, Seniority
from lifecycle.errors import ContractError

MAX_MESSAGE_BYTES: Final = 256 * 1024
STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
# Amounts fit a signed 64-bit column after summing many of them.
MAX_AMOUNT_MINOR: Final = 10**15

# The patterns mean the same in Python's re (ingest) and in ECMA-262 (what JSON Schema
# validators run). White space is spelled out, because the two \s differ (Python's has
# \x1c-\x1f and \x85, ECMA's has \ufeff); [\s\S] stands for any character, because their
# dots differ; and (?!\n)$ ends a text, because Python's $ also matches before a final line
# break.
# tests/integration/test_schemas_on_node.py holds them to it with Node.
SPACE: Final = r"\s\x1c-\x1f\x85\ufeff"
# Ids and codes: printable text only. A control character in an id is a producer's bug (and a
# NUL cannot be stored in a PostgreSQL text column at all): refused with a clear reason.
CONTROL: Final = r"\x00-\x1f\x7f-\x9f"  # Unicode's Cc: C0, DEL and C1
_PRINTABLE: Final = rf"[^{CONTROL}]"
# (A look-ahead for "printable to the end", then one character that is not white space: both
# run in linear time; a pattern that says both at once backtracks in quadratic time.)
ID_PATTERN: Final = rf"^(?={_PRINTABLE}*(?!\n)$){_PRINTABLE}*[^{SPACE}{CONTROL}]"
# Free text (names, reasons, notes) may hold tabs and line breaks, but never a NUL.
TEXT_PATTERN: Final = r"^[^\x00]*$"
NON_EMPTY_TEXT_PATTERN: Final = rf"^(?=[^\x00]*$)[^\x00]*[^\x00{SPACE}]"
NonEmpty = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=512,
        pattern=ID_PATTERN,
        description="Not blank; no control characters.",
    ),
]
Text = Annotated[str, msgspec.Meta(pattern=TEXT_PATTERN, description="Any text but NUL.")]
NonEmptyText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=512,
        pattern=NON_EMPTY_TEXT_PATTERN,
        description="Not blank; any text but NUL.",
    ),
]
_ADDRESS: Final = rf"[^@{SPACE}{CONTROL}]+"
EMAIL_PATTERN: Final = rf"^[{SPACE}]*{_ADDRESS}@{_ADDRESS}\.{_ADDRESS}[{SPACE}]*$"
Email = Annotated[
    str,
    msgspec.Meta(
        pattern=EMAIL_PATTERN,
        max_length=320,
        description="Compared case-insensitively after trimming.",
    ),
]
# (max_length: the pattern's white space and separators overlap, so its time grows with the
# square of a long text; msgspec checks the length first.)
PHONE_PATTERN: Final = rf"^[{SPACE}]*\+?(?:[ ().\-]*[0-9]){{6,15}}[ ().\-]*[{SPACE}]*$"
Phone = Annotated[
    str,
    msgspec.Meta(
        pattern=PHONE_PATTERN,
        max_length=64,
        description="6 to 15 digits; compared by its digits, with a leading +.",
    ),
]
PropertyKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=256,
        pattern=ID_PATTERN,
        description="Not blank; no control characters.",
    ),
]
# (?!\n) before $: Python's $ also matches before a final line break, which JSON Schema's does
# not; "EUR\n" is no currency.
CURRENCY_PATTERN: Final = r"^[A-Z]{3}(?!\n)$"
Currency = Annotated[str, msgspec.Meta(pattern=CURRENCY_PATTERN, description="ISO 4217 code.")]
COUNTRY_PATTERN: Final = r"^[A-Z]{2}(?!\n)$"
Country = Annotated[str, msgspec.Meta(pattern=COUNTRY_PATTERN, description="ISO 3166-1 alpha-2.")]
AwareDatetime = Annotated[
    datetime, msgspec.Meta(tz=True, description="RFC 3339 with an offset; the event time.")
]
PropertyValue = Text | int | float | bool


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
    source: Text | None = None
    medium: Text | None = None


class Profile(_Contract, frozen=True, kw_only=True):
    """What the lead told us about themselves; the latest values win."""

    first_name: Text | None = None
    last_name: Text | None = None
    company: Text | None = None
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
    properties: Annotated[dict[PropertyKey, PropertyValue], msgspec.Meta(max_length=64)] = {}

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
    assessed_by: Text | None = None


class Disqualification(_Contract, frozen=True, kw_only=True):
    """``data`` of a ``lead.disqualification`` event."""

    identity: Identity
    reason: NonEmptyText


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
    datacontenttype: Text | None = None
    subject: Text | None = None

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


# What each pattern means, said without quoting the value that failed it.
PATTERN_REASONS: Final = {
    ID_PATTERN: "must be non-blank text without control characters",
    TEXT_PATTERN: "must not contain a NUL character",
    NON_EMPTY_TEXT_PATTERN: "must be non-blank text without a NUL character",
    EMAIL_PATTERN: "is not an e-mail address",
    PHONE_PATTERN: "is not a phone number (6 to 15 digits)",
    CURRENCY_PATTERN: "is not an ISO 4217 currency code (three capital letters)",
    COUNTRY_PATTERN: "is not an ISO 3166-1 country code (two capital letters)",
}
# Where an unknown value was given, the values that are allowed (by the field's last name).
_ALLOWED: Final = {
    "type": EVENT_TYPES,
    "kind": KINDS,
    "channel": CHANNELS,
    "seniority": SENIORITIES,
    "specversion": ("1.0",),
}
_INVALID_VALUE: Final = re.compile(r"^Invalid (?:enum )?value ")
_REGEX: Final = re.compile(r"^Expected `str` matching regex '(?P<pattern>.*)'$", re.DOTALL)


def _validation_error(error: msgspec.ValidationError | msgspec.DecodeError) -> ContractError:
    """The field and a reason that never quotes the value (reasons reach logs and reports)."""
    # msgspec reports "reason - at `$.data.kind`"; split it so callers can name the field.
    message = str(error)
    reason, sep, where = message.rpartition(" - at `")
    if not sep:
        reason, where = message, "$"
    field = where.rstrip("`")
    if field.startswith("key` in `"):  # a map's key: "at `key` in `$.data.properties`"
        field = field.removeprefix("key` in `") + "[key]"
    if _INVALID_VALUE.match(reason):
        allowed = _ALLOWED.get(field.rpartition(".")[2])
        what = "unknown event type" if field == "$.type" else "not an allowed value"
        reason = what + (f"; expected one of {', '.join(allowed)}" if allowed else "")
    elif (regex := _REGEX.match(reason)) is not None:
        pattern = regex.group("pattern").encode().decode("unicode_escape")
        reason = PATTERN_REASONS.get(pattern, f"must match {regex.group('pattern')}")
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
