"""The inbound translation alone: a CloudEvent becomes a fact, identity keys and a profile."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from lifecycle.contracts import inbound
from lifecycle.contracts.translation import CampaignSpend, LeadFact, translate
from lifecycle.domain.facts import Qualification, Touch
from lifecycle.domain.identity import IdentityKey, IdentityKind


def decoded(event_type: str, data: dict) -> inbound.InboundEvent:
    return inbound.decode_structured(
        msgspec.json.encode(
            {
                "specversion": "1.0",
                "type": event_type,
                "source": "https://forms.example.com",
                "id": "e-1",
                "time": "2026-03-02T10:00:00+01:00",
                "data": data,
            }
        )
    )


def test_a_referral_becomes_a_touch_in_utc_with_its_keys_most_identifying_first():
    event = decoded(
        "lead.touchpoint",
        {
            "kind": "referral",
            "identity": {"anonymous_id": "c-1", "email": " Ann@Example.com "},
            "campaign": {"id": "spring", "channel": "paid_search"},
            "profile": {"first_name": "Ann", "seniority": "director"},
            "referrer": {"email": "bo@example.com"},
        },
    )

    translated = translate(event, "fact-1")

    assert isinstance(translated, LeadFact)
    assert isinstance(translated.fact, Touch)
    assert translated.fact.at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert translated.fact.identified
    assert (translated.fact.campaign_id, translated.fact.channel) == ("spring", "paid_search")
    assert translated.fact.seniority == "director"
    assert translated.keys == [
        IdentityKey(IdentityKind.EMAIL, "ann@example.com"),
        IdentityKey(IdentityKind.ANONYMOUS, "c-1"),
    ]
    assert translated.profile["first_name"] == "Ann"
    assert translated.referrer == [IdentityKey(IdentityKind.EMAIL, "bo@example.com")]
    assert translated.fact.referrer_lead_id is None  # (resolved by the ledger, not here)


def test_an_anonymous_touchpoint_is_not_identified():
    event = decoded("lead.touchpoint", {"kind": "page_view", "identity": {"anonymous_id": "c"}})

    translated = translate(event, "fact-2")

    assert isinstance(translated, LeadFact)
    assert not translated.fact.identified
    assert translated.referrer is None


def test_a_qualification_keeps_bant_and_a_spend_names_its_campaign():
    qualification = decoded(
        "lead.qualification",
        {
            "identity": {"email": "cy@example.com"},
            "need": True,
            "budget": False,
            "authority": True,
            "timeline": True,
        },
    )
    spend = decoded(
        "campaign.spend",
        {
            "campaign": {"id": "spring", "channel": "paid_search"},
            "amount_minor": 12_500,
            "currency": "EUR",
            "period_start": "2026-03-01",
            "period_end": "2026-03-31",
        },
    )

    fact = translate(qualification, "q-1")
    cost = translate(spend, "s-1")

    assert isinstance(fact, LeadFact)
    assert isinstance(fact.fact, Qualification)
    assert (fact.fact.need, fact.fact.budget) == (True, False)
    assert isinstance(cost, CampaignSpend)
    assert cost.campaign_key == "spring"
    assert (cost.spend.amount_minor, cost.spend.currency) == (12_500, "EUR")
