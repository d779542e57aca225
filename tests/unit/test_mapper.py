from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent

from lifecycle.adapters.eventstore import MsgspecMapper, MsgspecTranscoder
from lifecycle.aggregates import Lead
from lifecycle.domain.facts import Touch

MAPPER = MsgspecMapper(transcoder=MsgspecTranscoder())
WEIGHED = "tests:Parcel.Weighed"


class Parcel(Aggregate):
    TOPIC = "tests:Parcel"

    @event("Created", topic="tests:Parcel.Created.v1")
    def __init__(self, id: UUID) -> None:  # noqa: A002, ARG002
        self.grams = 0

    class Weighed(Aggregate.Event):
        """Version 1 said ``kilos`` (a float) or ``grams`` with a ``unit``; version 2 grams."""

        TOPIC = WEIGHED
        class_version = 2
        grams: int
        note: str = ""

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            if "kilos" in state:
                state["grams"] = round(float(state.pop("kilos")) * 1000)  # type: ignore[arg-type]
            elif state.pop("unit", "g") == "kg":
                state["grams"] = int(state["grams"]) * 1000  # type: ignore[call-overload]

        def apply(self, parcel: Parcel) -> None:
            parcel.grams = self.grams


def stored(state: dict[str, object], version: int = 2) -> StoredEvent:
    state = {"timestamp": "2026-03-02T09:00:00+00:00", **state}
    return StoredEvent(uuid4(), version, WEIGHED, msgspec.json.encode(state))


def test_a_stored_event_of_the_current_version_reads_back_equal_to_what_was_stored():
    lead = Lead(id=uuid4())
    lead.record(Touch(fact_id="f1", at=datetime.now(UTC), kind="form_fill", identified=True))
    for domain_event in lead.collect_events():
        assert MAPPER.to_domain_event(MAPPER.to_stored_event(domain_event)) == domain_event


def test_the_current_version_is_stored_with_its_class_version():
    parcel = Parcel(id=uuid4())
    parcel.trigger_event(Parcel.Weighed, grams=250)
    weighed = parcel.collect_events()[1]

    state = msgspec.json.decode(MAPPER.to_stored_event(weighed).state)

    assert (state["class_version"], state["grams"]) == (2, 250)


def test_an_old_version_that_no_longer_types_is_upcast_before_it_is_typed():
    weighed = MAPPER.to_domain_event(stored({"kilos": 1.5}))

    assert (weighed.grams, weighed.note) == (1500, "")  # type: ignore[attr-defined]


def test_an_old_version_that_still_types_is_upcast_too():
    weighed = MAPPER.to_domain_event(stored({"grams": 2, "unit": "kg"}))

    assert weighed.grams == 2000  # type: ignore[attr-defined]


def test_the_current_version_is_not_upcast():
    weighed = MAPPER.to_domain_event(stored({"grams": 2, "unit": "kg", "class_version": 2}))

    assert weighed.grams == 2  # type: ignore[attr-defined]
