"""Which fields of the stored events are personal: sealed with the lead's key at rest.

Personal are the identity values (``IdentifierAdded``), the profile (``ProfileUpdated``), and
in facts (``FactRecorded``, and the facts an ``Absorbed`` takes over) the assessor of a
qualification, the reason of a disqualification and the touchpoint properties that are
neither published nor read by the rules. Everything the rules read (kinds, instants,
campaigns, channels, seniority, company size, amounts, BANT) stays in clear, so the fold and
every replay run without a key. A new event type that holds personal data is named here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Final

import msgspec
from eventsourcing.utils import get_topic

from lifecycle.aggregates.lead import Lead
from lifecycle.domain import facts
from lifecycle.domain.facts import Disqualification, Fact, Qualification, Touch

RULES_PROPERTIES: Final = facts.RULES_PROPERTIES

Transform = Callable[[str], str]

_IDENTIFIER: Final = get_topic(Lead.IdentifierAdded)
_PROFILE: Final = get_topic(Lead.ProfileUpdated)
_FACT: Final = get_topic(Lead.FactRecorded)
_ABSORBED: Final = get_topic(Lead.Absorbed)
PERSONAL_TOPICS: Final = frozenset({_IDENTIFIER, _PROFILE, _FACT, _ABSORBED})
ERASED_TOPIC: Final = get_topic(Lead.Erased)

_VALUE_ENCODER: Final = msgspec.json.Encoder()
_VALUE_DECODER: Final = msgspec.json.Decoder()


def transform_state(
    topic: str,
    state: dict[str, Any],
    change: Transform,
    clear: Collection[str],
    *,
    sealing: bool,
) -> dict[str, Any]:
    """The event's state with each personal field changed (sealed or opened) by ``change``.

    ``clear``: the property names kept in clear. Property values are not all strings: they
    are sealed as JSON text and read back into their type.
    """
    if topic == _IDENTIFIER:
        state["value"] = change(state["value"])
    elif topic == _PROFILE:
        state["fields"] = {name: change(value) for name, value in state["fields"].items()}
    elif topic == _FACT:
        state["fact"] = _fact(state["fact"], change, clear, sealing=sealing)
    elif topic == _ABSORBED:
        state["facts"] = [_fact(f, change, clear, sealing=sealing) for f in state["facts"]]
    return state


def _fact(fact: Fact, change: Transform, clear: Collection[str], *, sealing: bool) -> Fact:
    match fact:
        case Touch() if any(name not in clear for name in fact.properties):
            properties = {
                name: value if name in clear else _property(value, change, sealing=sealing)
                for name, value in fact.properties.items()
            }
            return msgspec.structs.replace(fact, properties=properties)
        case Qualification() if fact.assessed_by is not None:
            return msgspec.structs.replace(fact, assessed_by=change(fact.assessed_by))
        case Disqualification():
            return msgspec.structs.replace(fact, reason=change(fact.reason))
    return fact


def _property(value: Any, change: Transform, *, sealing: bool) -> Any:  # noqa: ANN401 (a JSON value)
    if sealing:
        return change(_VALUE_ENCODER.encode(value).decode())
    if not isinstance(value, str):
        return value  # stored before sealing was on
    opened = change(value)
    if opened is value:
        return value  # (not sealed)
    try:
        return _VALUE_DECODER.decode(opened)
    except msgspec.DecodeError:
        return opened  # "[erased]"


def personal_values(topic: str, state: dict[str, Any], clear: Collection[str]) -> list[object]:
    """The personal values an event's state holds, as stored (sealed or not)."""
    if topic == _IDENTIFIER:
        return [state["value"]]
    if topic == _PROFILE:
        return list(state["fields"].values())
    facts = [state["fact"]] if topic == _FACT else state["facts"] if topic == _ABSORBED else []
    found: list[object] = []
    for fact in facts:
        match fact:
            case Touch():
                found.extend(v for k, v in fact.properties.items() if k not in clear)
            case Qualification() if fact.assessed_by is not None:
                found.append(fact.assessed_by)
            case Disqualification():
                found.append(fact.reason)
    return found
