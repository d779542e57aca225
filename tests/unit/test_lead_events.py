"""The lead.events contract: what each stored event becomes, and that no personal data leaves.

Events with personal data are recorded through the application on an SQLite file, and every
stored notification is translated, as the relay does.
"""

from __future__ import annotations

import json
from uuid import UUID

import msgspec
import pytest

from lifecycle import wiring
from lifecycle.adapters.keyring import new_master_key
from lifecycle.contracts.lead_events import (
    PUBLISHED_TOPICS,
    decode_lead_event,
    rfc3339,
    to_lead_event,
)
from lifecycle.contracts.schemadoc import asyncapi
from lifecycle.domain.facts import Qualification, Touch
from lifecycle.ledger.erasure import forget

PII = (
    "ann.smith@example.com",
    "+1 555 010 0777",
    "15550100777",
    "Annabel",
    "Smithers",
    "Acme Secret Corp",
    "anon-cookie-42",
    "cust-secret-9",
    "bob.jones@example.com",
    "Roberto",
    "5550109999",
    "carol@example.com",
    "Sally Seller",
    "Annabel rang about pricing",
    "Roberto's boss said no",
)
SKIPPED_TOPICS = {
    "lifecycle:Lead.Created.v1",
    "lifecycle:Lead.ProfileUpdated.v1",
    "lifecycle:Identity.Created.v1",
    "lifecycle:Identity.Reassigned.v1",
    "lifecycle:Receipt.Created.v1",
}
CAMPAIGN = {"id": "spring-webinar", "channel": "events"}


@pytest.fixture
def store(tmp_path, events):
    """An event store with every kind of event, many of them carrying personal data."""
    app = wiring.engine_at(f"sqlite:///{tmp_path}/lifecycle.db", master_key=new_master_key())
    profile = {"first_name": "Annabel", "last_name": "Smithers", "company": "Acme Secret Corp"}
    app.record(
        events.decode(
            events.touchpoint("page_view", 0, anonymous_id="anon-cookie-42", campaign=CAMPAIGN),
            events.touchpoint(
                "form_fill",
                1,
                anonymous_id="anon-cookie-42",
                email="Ann.Smith@example.com",
                phone="+1 555 010 0777",
                customer_id="cust-secret-9",
                profile={**profile, "seniority": "director", "company_size": 250},
                properties={"sales_contacted": True, "note": "Annabel rang about pricing"},
            ),
            events.touchpoint(
                "referral",
                2,
                email="bob.jones@example.com",
                profile={"first_name": "Roberto"},
                referrer={"email": "ann.smith@example.com"},
            ),
            events.qualification(3, email="ann.smith@example.com"),
            events.disqualification(4, "Roberto's boss said no", email="bob.jones@example.com"),
            events.touchpoint("demo_request", 5, phone="+1 555 010 9999"),
            events.touchpoint("webinar_attended", 6, email="carol@example.com"),
            events.spend("spring-webinar", 12_000, day=7),
        )
    )
    assessed = events.qualification(8, email="ann.smith@example.com")
    assessed["data"]["assessed_by"] = "Sally Seller"
    app.record(events.decode(assessed))
    # One event naming two leads merges them: Absorbed and MergedInto.
    app.record(
        events.decode(
            events.touchpoint("page_view", 9, email="carol@example.com", phone="+15550109999")
        )
    )
    # Bob is forgotten: Erased.
    forget(app, "email:bob.jones@example.com", at=events.at(10), reason_code="gdpr", suppress=False)
    yield app
    app.close()


def translate(app):
    """Every stored notification with what the relay makes of it (None: not published)."""
    keys = {campaign.id: campaign.key for campaign in [app.campaign("spring-webinar")]}
    return [
        (
            notification,
            event := app.mapper.to_domain_event(notification),
            to_lead_event(event, published_properties=("sales_contacted",), campaign_key=keys.get),
        )
        for notification in app.recorder.select_notifications(None, 10_000)
    ]


def published(app, name=None):
    """The messages published, optionally only those of one event name."""
    return [
        (event, message)
        for _, event, message in translate(app)
        if message is not None and (name is None or message.ce_type.endswith(f".{name}"))
    ]


def test_no_email_phone_name_or_company_appears_in_any_key_header_or_value(store):
    messages = [message for _, message in published(store)]
    wire = b"\n".join(
        part
        for message in messages
        for part in [message.key, message.value, *(v for _, v in message.headers)]
    ).lower()

    assert {message.ce_type for message in messages} == {
        "lifecycle.lead.FactRecorded",
        "lifecycle.lead.Captured",
        "lifecycle.lead.IdentifierAdded",
        "lifecycle.lead.Absorbed",
        "lifecycle.lead.MergedInto",
        "lifecycle.lead.Erased",
        "lifecycle.campaign.Created",
        "lifecycle.campaign.SpendRecorded",
    }
    for secret in PII:
        assert secret.lower().encode() not in wire, secret


def test_lead_created_profile_identity_and_receipt_events_are_not_published(store):
    outcomes = {(n.topic, message is not None) for n, _, message in translate(store)}

    assert {(topic, False) for topic in SKIPPED_TOPICS} <= outcomes
    assert {topic for topic, sent in outcomes if sent} == set(PUBLISHED_TOPICS)


def test_identifier_added_publishes_the_kind_of_identity_but_never_its_value(store):
    added = published(store, "IdentifierAdded")
    kinds = [decode_lead_event(message.value).identity_kind for _, message in added]

    assert sorted(set(kinds)) == ["anonymous", "customer", "email", "phone"]


def test_touchpoint_properties_are_limited_to_the_published_ones(store):
    facts = [decode_lead_event(m.value).fact for _, m in published(store, "FactRecorded")]
    form_fill = next(f for f in facts if isinstance(f, Touch) and f.kind == "form_fill")

    assert form_fill.properties == {"sales_contacted": True}
    assert (form_fill.seniority, form_fill.company_size) == ("director", 250)


def test_a_qualification_is_published_without_the_salesperson_who_assessed_it(store):
    facts = [decode_lead_event(m.value).fact for _, m in published(store, "FactRecorded")]
    qualifications = [f for f in facts if isinstance(f, Qualification)]

    assert len(qualifications) == 2
    assert all(q.assessed_by is None and q.criteria_met == 4 for q in qualifications)


def test_ce_id_is_aggregate_id_and_version_and_the_key_is_the_lead_id(store):
    for event, message in published(store):
        payload = decode_lead_event(message.value)
        assert message.ce_id == f"{event.originator_id}:{event.originator_version}"
        assert message.key == str(event.originator_id).encode()
        assert (payload.aggregate_id, payload.version) == (
            event.originator_id,
            event.originator_version,
        )


def test_every_message_is_a_binary_mode_cloudevent_with_json_content(store):
    for _, message in published(store):
        headers = {name: value.decode() for name, value in message.headers}
        assert headers["ce_specversion"] == "1.0"
        assert headers["content-type"] == "application/json"
        assert headers["ce_source"] == "urn:lead-lifecycle:event-store"
        assert (headers["ce_id"], headers["ce_type"]) == (message.ce_id, message.ce_type)
        assert headers["ce_time"].endswith("Z")


def test_ce_time_is_the_event_time_of_the_fact_behind_the_event(store, events):
    times: dict[str, set[str]] = {}
    for event, message in published(store):
        times.setdefault(message.ce_type.rsplit(".", 1)[1], set()).add(message.ce_time)
        if message.ce_type.endswith(".FactRecorded"):
            assert message.ce_time == rfc3339(event.fact.at)
        if message.ce_type.endswith((".IdentifierAdded", ".Created")):
            assert message.ce_time == rfc3339(event.timestamp)

    assert times["FactRecorded"] == {rfc3339(events.at(day)) for day in range(10) if day != 7}
    assert times["Captured"] == {rfc3339(events.at(day)) for day in (1, 2, 5, 6)}
    assert times["Absorbed"] == times["MergedInto"] == {rfc3339(events.at(9))}
    assert times["SpendRecorded"] == {rfc3339(events.at(7))}


def test_campaign_events_are_keyed_by_campaign_id_and_name_the_upstream_campaign(store):
    campaign = store.campaign("spring-webinar")
    [(_, created)] = published(store, "Created")
    [(_, spent)] = published(store, "SpendRecorded")
    spend = decode_lead_event(spent.value)

    assert created.key == spent.key == str(campaign.id).encode()
    assert decode_lead_event(created.value).campaign_key == "spring-webinar"
    assert spend.campaign_key == "spring-webinar"
    assert spend.spend is not None
    assert (spend.spend.amount_minor, spend.spend.currency) == (12_000, "EUR")


def test_a_merge_publishes_the_absorbed_facts_and_the_link_to_the_survivor(store):
    live = store.resolve("email:carol@example.com")
    [(_, absorbed)] = published(store, "Absorbed")
    [(_, merged)] = published(store, "MergedInto")
    survivor, loser = decode_lead_event(absorbed.value), decode_lead_event(merged.value)

    assert survivor.aggregate_id == live.id == store.resolve("phone:+15550109999").id
    assert loser.merged_into == live.id
    assert survivor.absorbed_lead_id == loser.aggregate_id
    assert [f.kind for f in survivor.facts if isinstance(f, Touch)] == ["webinar_attended"]
    assert survivor.fact_id == loser.fact_id


def test_the_payload_omits_empty_fields_and_decodes_back(store):
    [(_, captured), *_] = published(store, "Captured")
    document = json.loads(captured.value)

    assert set(document) == {"event", "aggregate", "aggregate_id", "version", "at", "fact_id"}
    assert decode_lead_event(captured.value).event == "Captured"
    assert isinstance(decode_lead_event(captured.value).aggregate_id, UUID)


def test_the_asyncapi_document_describes_the_lead_event_payload():
    document = asyncapi()
    payload = document["components"]["messages"]["lead-event"]["payload"]
    schema = document["components"]["schemas"][payload["$ref"].rsplit("/", 1)[1]]

    assert {"event", "aggregate", "aggregate_id", "version", "at", "fact"} <= set(
        schema["properties"]
    )
    assert set(schema["required"]) == {"event", "aggregate", "aggregate_id", "version", "at"}
    assert msgspec.json.encode(document)
