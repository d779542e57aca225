"""JSON Schema and AsyncAPI documents for every topic, generated from the msgspec contracts.

``render`` builds the documents in memory: one JSON Schema (draft 2020-12) per inbound event
type, an AsyncAPI 3.0.0 document for ``lead.touchpoints``, ``lead.touchpoints.dlq`` and
``lead.events``, and a README. The text is deterministic (sorted keys, 2-space indent, trailing
newline), so ``stale`` can compare byte for byte and a test can catch drift from the contracts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, get_args

import msgspec

from lifecycle.contracts import changes, inbound
from lifecycle.contracts.inbound import STRUCTURED_CONTENT_TYPE, InboundEvent
from lifecycle.contracts.lead_events import LeadEvent
from lifecycle.contracts.topics import CHANGES, DEAD_LETTERS, LEAD_EVENTS, TOUCHPOINTS
from lifecycle.domain.instants import YEARS_PATTERN

if TYPE_CHECKING:
    from pathlib import Path

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION: Final = "3.0.0"
API_VERSION: Final = "1.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
ASYNCAPI_FILE: Final = "asyncapi.json"
README_FILE: Final = "README.md"


# The attributes decode_binary reads from ce_* headers: the document follows the decoder.
_BINARY_ATTRIBUTES: Final = inbound._ATTRIBUTE_HEADERS  # noqa: SLF001 (its source of truth)
_COMPONENT_REF: Final = "#/components/schemas/{name}"
# Outbound components get a prefix: facts.Spend and inbound.Spend share a class name.
_LEAD_EVENTS_PREFIX: Final = f"{LEAD_EVENTS}."
_DEFS_REF: Final = "#/$defs/{name}"

_README: Final = """\
# schemas

Generated from the msgspec contracts in `lifecycle/contracts/inbound.py` (inbound),
`lifecycle/contracts/lead_events.py` (the `lead.events` payload) and
`lifecycle/contracts/changes.py` (the `lead.lifecycle` changes) by `lifecycle schemas write`
(or `make schemas`). Do not edit these files by hand: change the contracts and regenerate.
`lifecycle schemas check` (and the unit tests) fail when they are out of date.

- `<event type>.schema.json`: JSON Schema (draft 2020-12) of each inbound CloudEvent, the
  whole structured-mode envelope.
- `lifecycle.lead.<Change>.schema.json`: JSON Schema of the value of each change announced on
  `lead.lifecycle` (StageChanged, TemperatureChanged, HandoffOverdue,
  HandoffOverdueWithdrawn, Merged, Erased).
- `asyncapi.json`: AsyncAPI 3.0.0 description of the topics `lead.touchpoints`,
  `lead.touchpoints.dlq`, `lead.events` and `lead.lifecycle`.
"""


def _event_types() -> tuple[type[msgspec.Struct], ...]:
    return get_args(InboundEvent)


def _tag(event_type: type[msgspec.Struct]) -> str:
    return str(event_type.__struct_config__.tag)


def _data_type(event_type: type[msgspec.Struct]) -> Any:  # noqa: ANN401 (a type expression)
    return next(f.type for f in msgspec.structs.fields(event_type) if f.name == "data")


def schema_file_name(event_type: str) -> str:
    """Return the file name of an event type's JSON Schema: ``lead.touchpoint.schema.json``."""
    return f"{event_type}.schema.json"


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _present(*names: str) -> dict[str, Any]:
    """At least one of these properties, not null."""
    return {
        "anyOf": [
            {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in names
        ]
    }


# What the contracts check beyond each field's own type (their __post_init__ methods), said in
# JSON Schema, so that a producer validating against the schema is not refused by ingest. A
# property test (tests/unit/test_schemas.py) holds the two together.
_RULES: Final[dict[str, dict[str, Any]]] = {
    "Identity": _present("email", "phone", "anonymous_id", "customer_id"),
    "Referrer": _present("email", "customer_id"),
    "Touchpoint": {
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "referral"}}},
                "else": {"properties": {"referrer": {"type": "null"}}},
            },
            {
                "if": {"properties": {"kind": {"const": "purchase"}}},
                "else": {
                    "properties": {"amount_minor": {"type": "null"}, "currency": {"type": "null"}}
                },
            },
            {
                "if": _present("amount_minor"),
                "then": _present("currency"),
                "else": {"properties": {"currency": {"type": "null"}}},
            },
        ]
    },
}
# Not expressible in JSON Schema (it compares two fields): said in the description instead.
_SPEND_PERIOD: Final = " period_end must not be before period_start."


def _with_rules(components: dict[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """The components with the contracts' cross-field rules and the event time's years."""
    ruled = {name: dict(schema) for name, schema in components.items()}
    for name, rules in _RULES.items():
        if f"{prefix}{name}" in ruled:
            ruled[f"{prefix}{name}"].update(rules)
    if f"{prefix}Spend" in ruled:
        spend = ruled[f"{prefix}Spend"]
        spend["description"] = spend.get("description", "") + _SPEND_PERIOD
    for event_type in _event_types():
        envelope = ruled.get(f"{prefix}{event_type.__name__}")
        if envelope is not None:
            properties = dict(envelope["properties"])
            properties["time"] = {**properties["time"], "pattern": YEARS_PATTERN}
            envelope["properties"] = properties
    return ruled


def _without_openapi_discriminators(node: Any) -> Any:  # noqa: ANN401 (any JSON value)
    """AsyncAPI 3 names a discriminator by its property; msgspec writes OpenAPI's object."""
    if isinstance(node, dict):
        return {
            key: value["propertyName"]
            if key == "discriminator" and isinstance(value, dict)
            else _without_openapi_discriminators(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_without_openapi_discriminators(item) for item in node]
    return node


def _event_schema(event_type: type[msgspec.Struct]) -> dict[str, Any]:
    tag = _tag(event_type)
    schema = msgspec.json.schema(event_type, ref_template=_DEFS_REF)
    schema["$defs"] = _with_rules(schema["$defs"])
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_file_name(tag),
        "title": tag,
        "description": (
            f"A {tag} CloudEvent 1.0 on {TOUCHPOINTS}: the whole envelope, as sent in "
            f"structured mode ({STRUCTURED_CONTENT_TYPE}). In binary mode the Kafka value is "
            "`data` and the other attributes travel in ce_* headers. "
            "Generated from lifecycle/contracts/inbound.py; do not edit."
        ),
        **schema,
    }


def _header_value(attribute: dict[str, Any]) -> dict[str, Any]:
    """Turn an envelope attribute's schema into a header's: present or absent, never null."""
    value = {k: v for k, v in attribute.items() if k != "default"}
    options = value.pop("anyOf", None)
    if options is None:
        return value
    not_null = [option for option in options if option != {"type": "null"}]
    return {**value, **not_null[0]} if len(not_null) == 1 else {**value, "anyOf": not_null}


def _binary_headers(envelope: dict[str, Any]) -> dict[str, Any]:
    properties = envelope["properties"]
    names = [name for name in _BINARY_ATTRIBUTES if name in properties]
    return {
        "type": "object",
        "description": (
            "CloudEvents attributes, one ce_<attribute> header each, UTF-8. "
            "A ce_specversion header is what marks a message as binary mode."
        ),
        "properties": {f"ce_{name}": _header_value(properties[name]) for name in names},
        "required": [f"ce_{name}" for name in names if name in envelope["required"]],
    }


def _inbound_messages(
    refs: tuple[dict[str, Any], ...], components: dict[str, Any]
) -> dict[str, Any]:
    event_types = _event_types()
    envelope_refs, data_refs = refs[: len(event_types)], refs[len(event_types) :]
    messages: dict[str, Any] = {}
    for event_type, envelope_ref, data_ref in zip(
        event_types, envelope_refs, data_refs, strict=True
    ):
        tag = _tag(event_type)
        envelope = components[envelope_ref["$ref"].rsplit("/", 1)[1]]
        summary = envelope.get("description", tag)
        messages[f"{tag}.structured"] = {
            "name": tag,
            "title": f"{tag} (structured mode)",
            "summary": summary,
            "description": (
                "Structured-mode CloudEvent: the value is the whole event as JSON and there is "
                f"no ce_specversion header. Schema file: {schema_file_name(tag)}."
            ),
            "contentType": STRUCTURED_CONTENT_TYPE,
            "payload": envelope_ref,
        }
        messages[f"{tag}.binary"] = {
            "name": tag,
            "title": f"{tag} (binary mode)",
            "summary": summary,
            "description": (
                "Binary-mode CloudEvent: the value is the event's `data` as JSON and the "
                "attributes are ce_* headers."
            ),
            "contentType": "application/json",
            "headers": _binary_headers(envelope),
            "payload": data_ref,
        }
    return messages


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead-letter",
        "title": "Dead letter",
        "summary": f"A message from {TOUCHPOINTS} that could not be accepted.",
        "description": (
            "The original key, value and headers, unchanged, plus headers saying where the "
            "message came from and why it was rejected (named as Spring Kafka names them)."
        ),
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "description": "The original headers (ce_* in binary mode) plus these.",
            "properties": {
                "kafka_dlt-original-topic": {
                    "type": "string",
                    "description": f"Topic of the original message ({TOUCHPOINTS}).",
                },
                "kafka_dlt-original-partition": {
                    "description": "Partition of the original message.",
                },
                "kafka_dlt-original-offset": {
                    "description": "Offset of the original message in its partition.",
                },
                "kafka_dlt-exception-fqcn": {
                    "type": "string",
                    "description": "Fully qualified name of the error's class.",
                },
                "kafka_dlt-exception-message": {
                    "type": "string",
                    "description": "The error's message: what was wrong with the message.",
                },
            },
            "required": [
                "kafka_dlt-original-topic",
                "kafka_dlt-original-partition",
                "kafka_dlt-original-offset",
                "kafka_dlt-exception-fqcn",
                "kafka_dlt-exception-message",
            ],
        },
        "payload": {
            "description": (
                "The original value, byte for byte: it may not be JSON or a CloudEvent at all."
            ),
        },
        "bindings": {
            "kafka": {
                "bindingVersion": KAFKA_BINDING_VERSION,
                "key": {"description": "The original key, unchanged."},
            },
        },
    }


def _outbound_headers(attributes: dict[str, Any]) -> dict[str, Any]:
    """The ce_* headers of an outbound binary-mode CloudEvent: ce_specversion and these."""
    return {
        "type": "object",
        "description": "CloudEvents attributes, one ce_<attribute> header each, UTF-8.",
        "properties": {"ce_specversion": {"enum": ["1.0"]}, **attributes},
        "required": ["ce_specversion", *attributes],
    }


def _lead_event_message(payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "lead-event",
        "title": "Lead event",
        "summary": "A fact about a lead or campaign, free of personal data.",
        "description": (
            "Binary-mode CloudEvent published from the event store (at least once): "
            "attributes in ce_* headers, the payload as the value."
        ),
        "contentType": "application/json",
        "headers": _outbound_headers(
            {
                "ce_id": {
                    "type": "string",
                    "description": (
                        "`<aggregate id>:<version>`: unique per event, stable on redelivery."
                    ),
                },
                "ce_source": {
                    "type": "string",
                    "description": "The producer of the event: urn:lead-lifecycle:event-store.",
                },
                "ce_type": {
                    "type": "string",
                    "description": (
                        "lifecycle.<aggregate>.<event>, e.g. lifecycle.lead.FactRecorded, "
                        "lifecycle.campaign.SpendRecorded."
                    ),
                },
                "ce_time": {
                    "type": "string",
                    "format": "date-time",
                    "description": (
                        "The event time of the fact behind the event (for IdentifierAdded and "
                        "campaign Created, the time it was recorded)."
                    ),
                },
            }
        ),
        "payload": payload,
        "bindings": {
            "kafka": {
                "bindingVersion": KAFKA_BINDING_VERSION,
                "key": {
                    "type": "string",
                    "description": "The lead id; the campaign id for campaign spend events.",
                },
            },
        },
    }


def _lead_event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload's reference and its components, named ``lead.events.<Struct>``."""
    template = _COMPONENT_REF.format(name=f"{_LEAD_EVENTS_PREFIX}{{name}}")
    (ref,), schemas = msgspec.json.schema_components([LeadEvent], ref_template=template)
    return ref, {f"{_LEAD_EVENTS_PREFIX}{name}": schema for name, schema in schemas.items()}


_CHANGES_PREFIX: Final = f"{CHANGES}."
_CHANGE_SUMMARIES: Final = {
    "StageChanged": "The lead's lifecycle stage changed.",
    "TemperatureChanged": "The lead got hotter with a fact, or cooled down with time.",
    "HandoffOverdue": "A sales-ready lead no salesperson touched within the hand-off time.",
    "HandoffOverdueWithdrawn": "An overdue hand-off that was not: a late fact shows a sales "
    "touch in time.",
    "Merged": "Leads turned out to be one person: the others merged into lead_id.",
    "Erased": "The person was forgotten: erase what you hold of lead_id.",
}


def _change_schema(change_type: type[msgspec.Struct]) -> dict[str, Any]:
    name = f"{changes.TYPE_PREFIX}{change_type.__name__}"
    schema = msgspec.json.schema(change_type, ref_template=_DEFS_REF)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_file_name(name),
        "title": name,
        "description": (
            f"The value of a {name} message on {CHANGES} (a binary-mode CloudEvent: the "
            "attributes travel in ce_* headers). Generated from lifecycle/contracts/changes.py; "
            "do not edit."
        ),
        **schema,
    }


def _change_messages() -> tuple[dict[str, Any], dict[str, Any]]:
    """One message per change type, and their payloads' components (``lead.lifecycle.<type>``)."""
    template = _COMPONENT_REF.format(name=f"{_CHANGES_PREFIX}{{name}}")
    refs, schemas = msgspec.json.schema_components(changes.CHANGE_TYPES, ref_template=template)
    messages = {}
    for change_type, ref in zip(changes.CHANGE_TYPES, refs, strict=True):
        name = change_type.__name__
        messages[name] = {
            "name": name,
            "title": name,
            "summary": _CHANGE_SUMMARIES[name],
            "description": (
                "Binary-mode CloudEvent: attributes in ce_* headers, the payload as the value. "
                "State, not history: the difference from what was last announced of the lead."
            ),
            "contentType": "application/json",
            "headers": _outbound_headers(
                {
                    "ce_id": {
                        "type": "string",
                        "description": (
                            "Derived from what is announced (lead, type, new value, at, rules "
                            "version): the same on every redelivery."
                        ),
                    },
                    "ce_source": {"enum": [changes.SOURCE]},
                    "ce_type": {"enum": [f"{changes.TYPE_PREFIX}{name}"]},
                    "ce_time": {
                        "type": "string",
                        "format": "date-time",
                        "description": "The instant of the change in event time (= at).",
                    },
                }
            ),
            "payload": ref,
            "bindings": {
                "kafka": {
                    "bindingVersion": KAFKA_BINDING_VERSION,
                    "key": {"type": "string", "description": "The lead id."},
                },
            },
        }
    return messages, {f"{_CHANGES_PREFIX}{name}": schema for name, schema in schemas.items()}


def _channel(
    address: str, title: str, description: str, messages: dict[str, Any]
) -> dict[str, Any]:
    return {
        "address": address,
        "title": title,
        "description": description,
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
        "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "topic": address}},
    }


def _operation(action: str, channel: str, messages: dict[str, Any], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
    }


def asyncapi() -> dict[str, Any]:
    """Build the AsyncAPI 3.0.0 document of the engine's topics as a JSON-ready dict."""
    event_types = _event_types()
    refs, schemas = msgspec.json.schema_components(
        [*event_types, *map(_data_type, event_types)], ref_template=_COMPONENT_REF
    )
    inbound = _inbound_messages(refs, schemas)
    dead_letter = {"dead-letter": _dead_letter_message()}
    payload, outbound_schemas = _lead_event_schemas()
    lead_events = {"lead-event": _lead_event_message(payload)}
    change_messages, change_schemas = _change_messages()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "lead-lifecycle",
            "version": API_VERSION,
            "description": (
                "Topics of the lead lifecycle engine: CloudEvents 1.0 in; dead letters, "
                "PII-free lead events and lifecycle changes out. Generated from "
                "lifecycle/contracts/inbound.py, lead_events.py and changes.py by "
                "`lifecycle schemas write`; do not edit."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "touchpoints": _channel(
                TOUCHPOINTS,
                "Touchpoints",
                "Inbound CloudEvents 1.0 from upstream systems (forms, trials, carts, "
                "referrals, sales decisions, ad spend), in structured or binary mode.",
                inbound,
            ),
            "deadLetters": _channel(
                DEAD_LETTERS,
                "Dead letters",
                f"Messages from {TOUCHPOINTS} that break the contract.",
                dead_letter,
            ),
            "leadEvents": _channel(
                LEAD_EVENTS,
                "Lead events",
                "Outbound lead and campaign events without personal data, keyed by lead id "
                "(campaign id for spend).",
                lead_events,
            ),
            "changes": _channel(
                CHANGES,
                "Lifecycle changes",
                "What the engine decided about each lead (stage, temperature, overdue "
                "hand-offs, merges), the moment it decided it; keyed by lead id, no personal "
                "data.",
                change_messages,
            ),
        },
        "operations": {
            "receiveTouchpoints": _operation(
                "receive", "touchpoints", inbound, "Ingest touchpoints, sales decisions, spend."
            ),
            "sendDeadLetter": _operation(
                "send", "deadLetters", dead_letter, "Set aside a message that cannot be read."
            ),
            "sendLeadEvent": _operation(
                "send", "leadEvents", lead_events, "Publish a lead event from the event store."
            ),
            "sendChange": _operation(
                "send", "changes", change_messages, "Announce a change of a lead's state."
            ),
        },
        "components": {
            "schemas": _without_openapi_discriminators(
                {**_with_rules(schemas), **outbound_schemas, **change_schemas}
            ),
            "messages": {**inbound, **dead_letter, **lead_events, **change_messages},
        },
    }


def render() -> dict[str, str]:
    """Render every generated file: its name and its full text."""
    files = {
        schema_file_name(_tag(event_type)): _dump(_event_schema(event_type))
        for event_type in _event_types()
    }
    for change_type in changes.CHANGE_TYPES:
        name = schema_file_name(f"{changes.TYPE_PREFIX}{change_type.__name__}")
        files[name] = _dump(_change_schema(change_type))
    files[ASYNCAPI_FILE] = _dump(asyncapi())
    files[README_FILE] = _README
    return dict(sorted(files.items()))


def write(directory: Path) -> list[Path]:
    """Write the generated files into ``directory``, removing ``*.json`` it would not generate."""
    files = render()
    directory.mkdir(parents=True, exist_ok=True)
    for extra in directory.glob("*.json"):
        if extra.name not in files:
            extra.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of files in ``directory`` that are missing, differ, or are ``*.json`` not generated."""
    files = render()
    out_of_date = [
        name
        for name, text in files.items()
        if not (directory / name).is_file()
        or (directory / name).read_bytes() != text.encode("utf-8")
    ]
    extra = [path.name for path in directory.glob("*.json") if path.name not in files]
    return sorted(out_of_date + extra)
