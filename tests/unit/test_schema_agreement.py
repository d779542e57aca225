"""The published JSON Schemas and ingest agree: what the schema accepts, ingest accepts.

Events are drawn from the schema's own shapes (a generator of our own: hypothesis-jsonschema
does not run with this hypothesis), kept when the schema validates them, and must then
decode. The shipped sample goes the other way: every event of it validates.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.contracts.inbound import EVENT_TYPES, decode_structured
from lifecycle.demo.sample import bundled_sample, read_jsonl_gz

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def load(event_type: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{event_type}.schema.json").read_text())


def strategy(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:  # noqa: PLR0911 (one per kind of node)
    """Values of the shape a schema node describes (its cross-field rules left to the filter)."""
    if "$ref" in node:
        return strategy(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in node and "properties" not in node:
        return st.one_of([strategy(option, defs) for option in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "string":
        return _string(node)
    if kind == "object":
        return _object(node, defs)
    if kind == "integer":
        return st.integers(node.get("minimum", -(2**40)), node.get("maximum", 2**40))
    return SCALARS.get(kind, st.nothing())


SCALARS: dict[str | None, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "number": st.floats(allow_nan=False, allow_infinity=False),
}


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    if node.get("format") == "date-time":
        # (Bounds are naive for hypothesis; the instants it draws carry the zone.)
        bounds = datetime(1960, 1, 1), datetime(3010, 1, 1)  # noqa: DTZ001
        when = st.datetimes(*bounds, timezones=st.just(UTC))
        return when.map(lambda at: at.isoformat())
    if node.get("format") == "date":
        return st.dates().map(lambda day: day.isoformat())
    text = st.from_regex(node["pattern"]) if "pattern" in node else st.text(max_size=20)
    return text.filter(
        lambda s: node.get("minLength", 0) <= len(s) <= node.get("maxLength", 10_000)
    )


def _object(node: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    if "additionalProperties" in node and "properties" not in node:
        keys = _string(node.get("propertyNames", {"type": "string"}))
        values = strategy(node["additionalProperties"], defs)
        return st.dictionaries(keys, values, max_size=node.get("maxProperties", 8) + 1)
    required = set(node.get("required", []))
    fields = {name: strategy(schema, defs) for name, schema in node["properties"].items()}

    @st.composite
    def draw(draw_from: Any) -> dict[str, Any]:
        return {
            name: draw_from(value)
            for name, value in fields.items()
            if name in required or draw_from(st.booleans())
        }

    return draw()


def events_the_schema_accepts(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = load(event_type)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return strategy(schema, schema["$defs"]).filter(validator.is_valid)


# JSON Schema cannot compare two fields: the schema's description says so, ingest refuses it.
NOT_EXPRESSIBLE = re.compile(r"period_end is before period_start")


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_schema_is_valid_for_its_metaschema(event_type):
    jsonschema.Draft202012Validator.check_schema(load(event_type))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_an_event_the_published_schema_accepts_is_accepted_by_ingest(event_type):
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(events_the_schema_accepts(event_type))
    def accepted(event: dict[str, Any]) -> None:
        try:
            decode_structured(json.dumps(event).encode())
        except Exception as error:
            if not NOT_EXPRESSIBLE.search(str(error)):
                raise

    accepted()


def test_every_event_of_the_sample_validates_against_its_schema():
    validators = {
        event_type: jsonschema.Draft202012Validator(
            load(event_type), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        for event_type in EVENT_TYPES
    }
    seen = 0
    for line in read_jsonl_gz(bundled_sample()):
        event = json.loads(line)
        errors = list(validators[event["type"]].iter_errors(event))
        assert not errors, (event["id"], [e.message for e in errors])
        seen += 1
    assert seen > 1000
