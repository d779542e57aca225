"""Wire contracts: what is accepted, and a clear error naming the field for what is not."""

from __future__ import annotations

import copy

import msgspec
import pytest

from lifecycle.contracts.inbound import (
    MAX_MESSAGE_BYTES,
    SpendEvent,
    TouchpointEvent,
    decode_binary,
    decode_message,
    decode_structured,
)
from lifecycle.errors import ContractError

GOOD = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "https://forms.example.com",
    "type": "lead.touchpoint",
    "time": "2026-03-02T10:00:00+01:00",
    "data": {
        "kind": "form_fill",
        "identity": {"email": "ann@example.com", "anonymous_id": "cookie-1"},
        "campaign": {"id": "spring", "channel": "paid_search", "source": "google"},
        "profile": {"first_name": "Ann", "seniority": "vp", "company_size": 250},
        "properties": {"page": "/pricing", "score": 3, "returning": True},
    },
}


def changed(path: str, value: object) -> bytes:
    """GOOD with one field replaced (``value`` None removes it)."""
    event = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    target = event
    for name in parents:
        target = target[name]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return msgspec.json.encode(event)


def test_a_structured_touchpoint_is_decoded_with_its_event_time():
    event = decode_structured(msgspec.json.encode(GOOD))

    assert isinstance(event, TouchpointEvent)
    assert event.data.kind == "form_fill"
    assert event.time.utcoffset().total_seconds() == 3600
    assert event.data.profile.company_size == 250


def test_a_binary_mode_event_takes_its_attributes_from_ce_headers():
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"spend-1"),
        ("ce_source", b"https://ads.example.com"),
        ("ce_type", b"campaign.spend"),
        ("ce_time", b"2026-03-31T23:00:00Z"),
        ("content-type", b"application/json"),
    ]
    value = msgspec.json.encode(
        {
            "campaign": {"id": "spring", "channel": "paid_search"},
            "amount_minor": 125_000,
            "currency": "EUR",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
        }
    )

    event = decode_message(value, headers)

    assert isinstance(event, SpendEvent)
    assert (event.source, event.id, event.data.amount_minor) == (
        "https://ads.example.com",
        "spend-1",
        125_000,
    )


def test_unknown_fields_are_ignored_for_forward_compatibility():
    event = decode_structured(changed("data.newfield", "x"))

    assert isinstance(event, TouchpointEvent)


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        pytest.param(b"{not json", "$", "not valid JSON", id="not-json"),
        pytest.param(b"[1, 2]", "$", "Expected `object`", id="not-an-object"),
        pytest.param(
            changed("specversion", "0.3"), "$.specversion", "expected one of 1.0", id="version"
        ),
        pytest.param(changed("id", None), "$", "missing required field `id`", id="no-id"),
        pytest.param(changed("source", ""), "$.source", "length >= 1", id="empty-source"),
        pytest.param(changed("type", "lead.sneeze"), "$.type", "unknown event type", id="type"),
        pytest.param(changed("time", "2026-03-02T10:00:00"), "$.time", "timezone", id="naive"),
        pytest.param(changed("time", "yesterday"), "$.time", "Invalid RFC3339", id="time"),
        pytest.param(
            changed("data.kind", "sneeze"), "$.data.kind", "not an allowed value", id="kind"
        ),
        pytest.param(changed("data.identity", {}), "$.data.identity", "at least one", id="who"),
        pytest.param(
            changed("data.identity.anonymous_id", "  "),
            "$.data.identity.anonymous_id",
            "non-blank text without control characters",
            id="blank-id",
        ),
        pytest.param(
            changed("data.identity.phone", "1----"),
            "$.data.identity.phone",
            "not a phone number",
            id="phone-without-digits",
        ),
        pytest.param(changed("time", "0001-01-01T00:00:00+01:00"), "$", "years", id="ancient"),
        pytest.param(
            msgspec.json.encode(GOOD).replace(b"Ann", b"A\xffn"),
            "$",
            "not valid JSON",
            id="bad-utf8",
        ),
        pytest.param(
            changed("data.identity.email", "not-an-email"),
            "$.data.identity.email",
            "not an e-mail address",
            id="email",
        ),
        pytest.param(
            changed("data.campaign.channel", "tv"),
            "$.data.campaign.channel",
            "expected one of organic_search",
            id="channel",
        ),
        pytest.param(
            changed("data.profile.seniority", "intern"),
            "$.data.profile.seniority",
            "expected one of c_level",
            id="seniority",
        ),
        pytest.param(
            changed("data.profile.company_size", 0),
            "$.data.profile.company_size",
            ">= 1",
            id="company-size",
        ),
        pytest.param(
            changed("data.amount_minor", 100), "$.data", "only allowed on kind 'purchase'", id="amt"
        ),
        pytest.param(
            changed("data.referrer", {"email": "x@example.com"}),
            "$.data",
            "only allowed on kind 'referral'",
            id="referrer",
        ),
        pytest.param(
            changed("data.properties", {"nested": {"a": 1}}),
            "$.data.properties[...]",
            "Expected `bool | int | float | str`",
            id="properties",
        ),
    ],
)
def test_a_malformed_event_is_rejected_naming_the_field_and_the_reason(value, field, reason):
    with pytest.raises(ContractError) as raised:
        decode_structured(value)

    assert raised.value.field == field
    assert reason in raised.value.reason


IDS = ("id", "source", "data.identity.anonymous_id", "data.campaign.id")
TEXTS = ("data.profile.first_name", "data.campaign.source", "data.properties.page")


@pytest.mark.parametrize("path", IDS)
@pytest.mark.parametrize("character", ["\x00", "\x01", "\t", "\n", "\x1b", "\x7f", "\x80", "\x9f"])
def test_an_id_with_a_control_character_is_refused_saying_so(path, character):
    with pytest.raises(ContractError) as raised:
        decode_structured(changed(path, f"a{character}b"))

    assert raised.value.field == f"$.{path}"
    assert raised.value.reason == "must be non-blank text without control characters"


@pytest.mark.parametrize("path", TEXTS)
def test_free_text_may_hold_line_breaks_and_tabs_but_never_a_nul(path):
    decode_structured(changed(path, "two\nlines\tand a tab\x01"))

    with pytest.raises(ContractError) as raised:
        decode_structured(changed(path, "a\x00b"))
    assert raised.value.reason == "must not contain a NUL character"


def test_an_e_mail_with_a_control_character_is_not_an_e_mail():
    with pytest.raises(ContractError, match="is not an e-mail address"):
        decode_structured(changed("data.identity.email", "ann\x00@example.com"))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.kind", "buy carol@example.com"),
        ("data.campaign.channel", "carol@example.com"),
        ("data.profile.seniority", "Carol Smith"),
        ("type", "lead.carol@example.com"),
        ("data.identity.email", "carol@@example.com"),
        ("data.profile.country", "Carol Smith"),
    ],
)
def test_a_reason_never_quotes_the_value_it_refused(path, value):
    with pytest.raises(ContractError) as raised:
        decode_structured(changed(path, value))

    assert "carol" not in str(raised.value).lower()


def test_a_purchase_needs_amount_and_currency_together():
    event = copy.deepcopy(GOOD)
    event["data"].update(kind="purchase", amount_minor=4_900)

    with pytest.raises(ContractError, match="amount_minor and currency go together"):
        decode_structured(msgspec.json.encode(event))


def test_spend_with_a_negative_amount_or_a_reversed_period_is_rejected():
    spend = {
        "specversion": "1.0",
        "id": "s",
        "source": "ads",
        "type": "campaign.spend",
        "time": "2026-03-31T00:00:00Z",
        "data": {
            "campaign": {"id": "c", "channel": "display"},
            "amount_minor": -1,
            "currency": "EUR",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
        },
    }
    with pytest.raises(ContractError, match=">= 0") as raised:
        decode_structured(msgspec.json.encode(spend))
    assert raised.value.field == "$.data.amount_minor"

    spend["data"].update(amount_minor=1, period_start="2026-04-01")
    with pytest.raises(ContractError, match="period_end is before period_start"):
        decode_structured(msgspec.json.encode(spend))


def test_a_value_over_256_kib_is_rejected_before_decoding():
    oversized = b"{" + b" " * MAX_MESSAGE_BYTES + b"}"

    with pytest.raises(ContractError, match="over the limit of 262144 bytes"):
        decode_structured(oversized)
    with pytest.raises(ContractError, match="over the limit"):
        decode_binary({"ce_specversion": b"1.0"}, oversized)


def test_a_binary_event_missing_a_ce_header_names_it():
    headers = [("ce_specversion", b"1.0"), ("ce_source", b"s"), ("ce_type", b"lead.touchpoint")]

    with pytest.raises(ContractError, match="missing required field `id`"):
        decode_message(msgspec.json.encode(GOOD["data"]), headers)


def test_a_structured_event_is_read_as_structured_even_with_ce_headers():
    headers = [("content-type", b"application/cloudevents+json"), ("ce_specversion", "1.0")]

    event = decode_message(msgspec.json.encode(GOOD), headers)

    assert isinstance(event, TouchpointEvent)


def test_a_header_without_a_value_is_rejected_not_crashed_on():
    with pytest.raises(ContractError, match="header has no value"):
        decode_message(msgspec.json.encode(GOOD), [("content-type", None)])


def test_a_message_without_a_value_is_rejected():
    with pytest.raises(ContractError, match="no value"):
        decode_message(None, [])
