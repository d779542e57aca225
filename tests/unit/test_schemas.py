"""The generated JSON Schema and AsyncAPI documents under schemas/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle.contracts.inbound import EVENT_TYPES
from lifecycle.contracts.schemadoc import render, schema_file_name, stale, write
from lifecycle.domain.vocabulary import CHANNELS, KINDS

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.fixture(scope="module")
def files():
    return render()


@pytest.fixture(scope="module")
def asyncapi(files):
    return json.loads(files["asyncapi.json"])


def resolve(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_schema_files_are_up_to_date_with_the_contracts():
    out_of_date = stale(SCHEMAS)
    assert not out_of_date, (
        f"schemas/ is out of date with lifecycle/contracts.py ({', '.join(out_of_date)}): "
        "run `make schemas` (or `lifecycle schemas write`) and commit the result"
    )


def test_every_inbound_event_type_has_a_schema_file(files):
    assert set(EVENT_TYPES) == {
        "lead.touchpoint",
        "lead.qualification",
        "lead.disqualification",
        "campaign.spend",
    }
    for event_type in EVENT_TYPES:
        assert schema_file_name(event_type) in files


def test_each_schema_file_is_a_draft_2020_12_schema_of_the_whole_cloudevent(files):
    for event_type in EVENT_TYPES:
        name = schema_file_name(event_type)
        schema = json.loads(files[name])
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == name
        assert schema["title"] == event_type
        envelope = resolve(schema, schema["$ref"])
        assert envelope["properties"]["type"] == {"enum": [event_type]}
        assert envelope["properties"]["specversion"] == {"enum": ["1.0"]}
        assert {"specversion", "id", "source", "type", "time", "data"} <= set(envelope["required"])
        assert all(ref.startswith("#/$defs/") for ref in refs(schema))
        for ref in refs(schema):
            resolve(schema, ref)


def test_the_touchpoint_schema_lists_the_21_kinds_and_the_11_channels(files):
    schema = json.loads(files["lead.touchpoint.schema.json"])
    kinds = schema["$defs"]["Touchpoint"]["properties"]["kind"]["enum"]
    channels = schema["$defs"]["TouchpointCampaign"]["properties"]["channel"]["enum"]
    assert len(kinds) == 21
    assert set(kinds) == set(KINDS)
    assert len(channels) == 11
    assert set(channels) == set(CHANNELS)


def test_the_asyncapi_document_is_version_3_and_names_the_four_topics(asyncapi):
    assert asyncapi["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in asyncapi["channels"].values()}
    assert addresses == {
        "lead.touchpoints",
        "lead.touchpoints.dlq",
        "lead.events",
        "lead.lifecycle",
    }
    for channel in asyncapi["channels"].values():
        assert channel["bindings"]["kafka"]["topic"] == channel["address"]


def test_the_engine_receives_touchpoints_and_sends_dead_letters_lead_events_and_changes(asyncapi):
    actions = {
        resolve(asyncapi, operation["channel"]["$ref"])["address"]: operation["action"]
        for operation in asyncapi["operations"].values()
    }
    assert actions == {
        "lead.touchpoints": "receive",
        "lead.touchpoints.dlq": "send",
        "lead.events": "send",
        "lead.lifecycle": "send",
    }


def test_each_change_type_has_a_message_with_its_own_ce_type_and_a_schema_file(asyncapi, files):
    messages = asyncapi["components"]["messages"]
    for name in ("StageChanged", "TemperatureChanged", "HandoffOverdue", "Merged"):
        ce_type = f"lifecycle.lead.{name}"
        assert messages[name]["headers"]["properties"]["ce_type"] == {"enum": [ce_type]}
        payload = resolve(asyncapi, messages[name]["payload"]["$ref"])
        schema = json.loads(files[schema_file_name(ce_type)])
        assert schema["$id"] == schema_file_name(ce_type)
        assert set(payload["required"]) == set(resolve(schema, schema["$ref"])["required"])


def test_touchpoints_are_described_in_structured_and_binary_mode(asyncapi):
    messages = asyncapi["components"]["messages"]
    for event_type in EVENT_TYPES:
        structured = messages[f"{event_type}.structured"]
        binary = messages[f"{event_type}.binary"]
        assert structured["contentType"] == "application/cloudevents+json"
        envelope = resolve(asyncapi, structured["payload"]["$ref"])
        assert envelope["properties"]["data"] == binary["payload"]
        assert binary["headers"]["properties"]["ce_type"] == {"enum": [event_type]}
        assert "ce_specversion" in binary["headers"]["required"]


def test_dead_letters_carry_the_spring_kafka_headers(asyncapi):
    headers = asyncapi["components"]["messages"]["dead-letter"]["headers"]
    assert set(headers["required"]) == {
        "kafka_dlt-original-topic",
        "kafka_dlt-original-partition",
        "kafka_dlt-original-offset",
        "kafka_dlt-exception-fqcn",
        "kafka_dlt-exception-message",
    }


def test_every_reference_in_the_asyncapi_document_resolves(asyncapi):
    found = list(refs(asyncapi))
    assert found
    for ref in found:
        assert ref.startswith("#/")
        resolve(asyncapi, ref)


def test_rendering_is_deterministic_sorted_and_ends_with_a_newline(files):
    assert render() == files
    for name, text in files.items():
        assert text.endswith("\n")
        if name.endswith(".json"):
            assert json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n" == text


def test_stale_names_missing_changed_and_extra_files_until_written_again(tmp_path):
    assert stale(tmp_path) == sorted(render())
    write(tmp_path)
    assert stale(tmp_path) == []
    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "lead.retired.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "README.md").unlink()
    assert stale(tmp_path) == ["README.md", "asyncapi.json", "lead.retired.schema.json"]
    write(tmp_path)
    assert stale(tmp_path) == []
    assert not (tmp_path / "lead.retired.schema.json").exists()
