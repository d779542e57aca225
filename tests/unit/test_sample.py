from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from lifecycle.contracts.inbound import EVENT_TYPES, decode_structured
from lifecycle.demo.sample import (
    DEFAULT_START,
    bundled_sample,
    generate,
    read_jsonl_gz,
    write_jsonl_gz,
)
from lifecycle.domain.vocabulary import KINDS

REGENERATE = (
    'cd /work/main && PYTHONPATH=. python -c "from pathlib import Path; '
    "from lifecycle.demo.sample import generate, write_jsonl_gz; "
    "write_jsonl_gz(generate(), Path('lifecycle/demo/history.jsonl.gz'))\""
)


@pytest.fixture(scope="module")
def history():
    return generate()


def touchpoints(history, kind):
    return [e for e in history if e["type"] == "lead.touchpoint" and e["data"]["kind"] == kind]


def at(event):
    return datetime.fromisoformat(event["time"])


def test_the_generator_is_deterministic_for_a_seed():
    assert generate(people=60, days=30, seed=3) == generate(people=60, days=30, seed=3)
    assert generate(people=60, days=30, seed=3) != generate(people=60, days=30, seed=4)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"people": 500, "days": 120, "seed": 11},
        {"people": 40, "days": 7, "seed": 1},
        {"people": 80, "days": 30, "seed": 2, "start": datetime(2027, 1, 15, 12, tzinfo=UTC)},
    ],
)
def test_every_generated_event_decodes_with_the_contract_decoder(options):
    for event in generate(**options):
        decode_structured(msgspec.json.encode(event))


def test_the_bundled_file_is_what_generate_produces_with_the_defaults(history):
    expected = [msgspec.json.encode(event) for event in history]
    assert list(read_jsonl_gz(bundled_sample())) == expected, (
        f"lifecycle/demo/history.jsonl.gz is stale; regenerate it with: {REGENERATE}"
    )


def test_written_events_read_back_as_their_json_lines(tmp_path):
    events = generate(people=20, days=10)
    path = tmp_path / "nested" / "history.jsonl.gz"
    write_jsonl_gz(events, path)
    assert [msgspec.json.decode(line) for line in read_jsonl_gz(path)] == events


def test_the_default_history_is_a_few_thousand_events_of_a_few_hundred_people(history):
    people = {
        e["data"]["identity"]["email"] for e in history if "email" in e["data"].get("identity", {})
    }
    assert 2000 <= len(history) <= 10_000
    assert 150 <= len(people) <= 300


def test_events_are_sorted_by_time_inside_the_window_with_unique_ids(history):
    times = [at(e) for e in history]
    assert times == sorted(times)
    assert times[0] >= DEFAULT_START
    assert times[-1] < DEFAULT_START + timedelta(days=90)
    assert len({(e["source"], e["id"]) for e in history}) == len(history)
    assert len({e["id"] for e in history}) == len(history)


def test_some_sources_stamp_times_with_a_non_utc_offset(history):
    offsets = {at(e).utcoffset() for e in history}
    assert timedelta(0) in offsets
    assert len(offsets) >= 2


def test_the_history_contains_every_event_type_and_touchpoint_kind(history):
    assert {e["type"] for e in history} == set(EVENT_TYPES)
    assert {e["data"]["kind"] for e in history if e["type"] == "lead.touchpoint"} == set(KINDS)


def test_at_least_six_campaigns_on_several_channels_report_spend_one_in_dollars(history):
    spends = [e["data"] for e in history if e["type"] == "campaign.spend"]
    campaigns = {s["campaign"]["id"] for s in spends}
    assert len(campaigns) >= 6
    assert len({s["campaign"]["channel"] for s in spends}) >= 6
    assert {s["currency"] for s in spends} == {"EUR", "USD"}
    touched = {
        e["data"]["campaign"]["id"]
        for e in history
        if e["type"] == "lead.touchpoint" and "campaign" in e["data"]
    }
    assert campaigns <= touched


def test_anonymous_visitors_later_identify_with_an_email(history):
    first_anonymous = {}
    identified_later = set()
    for event in history:
        identity = event["data"].get("identity", {})
        anonymous_id = identity.get("anonymous_id")
        if anonymous_id is None:
            continue
        if "email" not in identity:
            first_anonymous.setdefault(anonymous_id, at(event))
        elif anonymous_id in first_anonymous:
            identified_later.add(anonymous_id)
    assert len(identified_later) >= 50
    assert len(first_anonymous) > len(identified_later)  # and some never do


def test_referrals_name_customers_who_bought_before(history):
    bought = {}
    for purchase in touchpoints(history, "purchase"):
        bought.setdefault(purchase["data"]["identity"]["email"], at(purchase))
    referrals = touchpoints(history, "referral")
    assert len(referrals) >= 5
    for referral in referrals:
        referrer = referral["data"]["referrer"]["email"]
        assert bought[referrer] < at(referral)
        assert referral["data"]["identity"]["email"] not in bought or (
            bought[referral["data"]["identity"]["email"]] > at(referral)
        )


def test_purchases_carry_an_amount_a_currency_and_a_customer_id(history):
    purchases = touchpoints(history, "purchase")
    assert len(purchases) >= 20
    for purchase in purchases:
        assert purchase["data"]["amount_minor"] > 0
        assert purchase["data"]["currency"] in {"EUR", "USD"}
        assert purchase["data"]["identity"]["customer_id"]


def test_bant_qualifications_both_meet_and_miss_three_criteria(history):
    met = Counter(
        sum(e["data"][c] for c in ("need", "budget", "authority", "timeline")) >= 3
        for e in history
        if e["type"] == "lead.qualification"
    )
    assert met[True] >= 10
    assert met[False] >= 10


def test_some_people_give_their_phone_alone_then_with_their_email(history):
    phone_only = set()
    joined = set()
    for event in history:
        identity = event["data"].get("identity", {})
        if "phone" in identity and "email" not in identity:
            phone_only.add(identity["phone"])
        elif "phone" in identity and identity["phone"] in phone_only:
            joined.add(identity["phone"])
    assert len(joined) >= 3


def test_trials_are_followed_by_product_usage(history):
    started = {e["data"]["identity"]["email"]: at(e) for e in touchpoints(history, "trial_start")}
    usages = touchpoints(history, "product_usage")
    assert usages
    for usage in usages:
        assert started[usage["data"]["identity"]["email"]] < at(usage)


def test_personal_data_is_obviously_fake(history):
    for event in history:
        identity = event["data"].get("identity", {})
        if "email" in identity:
            assert identity["email"].endswith("@example.com")
        if "phone" in identity:
            assert identity["phone"].startswith("+1 555 01")
