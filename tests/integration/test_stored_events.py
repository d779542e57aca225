"""Stored events are read forever: golden files of each version must keep loading."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import msgspec
from eventsourcing.persistence import StoredEvent

from lifecycle.aggregates import Lead
from lifecycle.domain.vocabulary import Stage

GOLDEN = Path(__file__).parent.parent / "golden" / "stored_events_v1.jsonl"


def test_golden_stored_events_of_version_one_still_load_into_the_same_leads(engine):
    lines = GOLDEN.read_bytes().splitlines()
    stored = [
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=msgspec.json.encode(row["state"]),
        )
        for row in map(msgspec.json.decode, lines)
    ]
    engine.recorder.insert_events(stored)

    lead = engine.resolve("email:golden@example.com")
    view = engine.view(lead)
    merged = engine.get(Lead, lead.absorbed[0])

    assert engine.resolve("phone:+15550100000").id == lead.id
    assert merged.merged_into == lead.id
    assert [m.stage for m in view.history] == [
        Stage.VISITOR,
        Stage.LEAD,
        Stage.MQL,
        Stage.SQL,
        Stage.CUSTOMER,
    ]
    assert (view.fit, view.revenue, view.acquisition_campaign) == (15, {"EUR": 1200}, "spring")
    assert lead.profile["first_name"][1] == "Gold"
    assert [s.amount_minor for s in engine.campaign("spring").spend] == [5000]
