"""Forgetting a person (lifecycle/ledger/erasure.py), on the hand-computed scenario.

On SQLite and PostgreSQL: oli (merged from two leads) and quinn (who referred bea, yan and
zoe) are forgotten; every figure is the same before, after, and after a replay from the store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import scenario

from lifecycle import wiring
from lifecycle.adapters.keyring import ERASED, new_master_key
from lifecycle.contracts import changes
from lifecycle.errors import ConfigurationError, LeadNotFoundError
from lifecycle.ledger.erasure import forget
from lifecycle.ledger.export import encode, export_person
from lifecycle.ledger.report import lead_report
from lifecycle.projections.announcer import Announcer
from lifecycle.projections.leads import LeadsProjection
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.schema import view_bodies
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

NOW = datetime(2026, 4, 1, tzinfo=UTC)
OLI, QUINN = "email:oli@example.com", "email:quinn@example.com"


@pytest.fixture
def sealed(database_url):
    return Settings(database_url=database_url, master_key=new_master_key())


@pytest.fixture
def engine(sealed, events):
    engine = wiring.engine(sealed)
    engine.record(events.decode(*scenario.history(events)))
    yield engine
    engine.close()


def figures(engine, settings: Settings, path: Path) -> dict[str, list]:
    """Every view, rebuilt from the store; and the fold of every lead."""
    store = ViewStore(f"sqlite:///{path}")
    try:
        rules = default_rulebook()
        swap(store, fill_from_store(engine, store, rules, settings), rules)
        with store.reading() as tx:
            found = {
                name: sorted(map(tuple, tx.rows(f"SELECT * FROM {name}")), key=repr)
                for name in view_bodies("a")
            }
            lead_ids = [UUID(row[0]) for row in tx.rows("SELECT lead_id FROM lifecycle_leads")]
    finally:
        store.close()
    found["folds"] = sorted(repr(engine.view(engine.get_lead(i))) for i in lead_ids)
    return found


def test_forgetting_a_merged_person_and_a_referrer_leaves_every_figure_as_it_was(
    engine, sealed, tmp_path
):
    before = figures(engine, sealed, tmp_path / "before.db")
    oli_leads = {engine.resolve(OLI).id, engine.resolve(f"phone:{scenario.OLI_PHONE}").id}

    forgot_oli = forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False)
    forgot_quinn = forget(engine, QUINN, at=NOW, reason_code="gdpr_art17", suppress=False)

    assert len(forgot_oli.lead_ids) == 2  # the phone-only lead merged into oli's goes too
    assert forgot_oli.identities >= 2
    assert not forgot_quinn.already
    after = figures(engine, sealed, tmp_path / "after.db")
    assert after == before
    for reference in (OLI, QUINN, f"phone:{scenario.OLI_PHONE}"):
        with pytest.raises(LeadNotFoundError):
            engine.resolve(reference)
    # The lead is still there, by its id, with its facts and figures, and nothing of the person.
    oli = engine.get_lead(forgot_oli.lead_id)
    assert {key.value for key in oli.identifiers} == {ERASED}
    report = lead_report(engine, oli, as_of=None)
    assert report.stage == "sql"
    assert "oli@example.com" not in repr(report)
    assert oli_leads <= set(forgot_oli.lead_ids)


def test_forgetting_again_changes_nothing(engine):
    first = forget(engine, QUINN, at=NOW, reason_code="gdpr_art17", suppress=False)

    assert forget(engine, str(first.lead_id), at=NOW, reason_code="x", suppress=False).already
    assert forget(engine, QUINN, at=NOW, reason_code="x", suppress=False).already


def test_a_forgotten_person_s_next_touchpoint_starts_a_new_lead_unless_suppressed(engine, events):
    forget(engine, QUINN, at=NOW, reason_code="gdpr_art17", suppress=False)
    forget(engine, "email:ann@example.com", at=NOW, reason_code="gdpr_art17", suppress=True)

    back = engine.record(
        events.decode(events.touchpoint("page_view", 31, email="quinn@example.com"))
    )
    dropped = engine.record(
        events.decode(events.touchpoint("page_view", 31, email="ann@example.com"))
    )

    assert (back.recorded, back.suppressed) == (1, 0)
    assert len(engine.resolve(QUINN).facts) == 1  # a new lead, knowing nothing of the old one
    assert (dropped.recorded, dropped.suppressed) == (0, 1)
    with pytest.raises(LeadNotFoundError):
        engine.resolve("email:ann@example.com")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # it reads SQLite's files
def test_the_raw_store_holds_no_destroyed_key_and_no_personal_value(engine, sealed):
    path = Path(sealed.database_url.removeprefix("sqlite:///").split("?")[0])
    oli = engine.resolve(OLI).id
    wrapped = engine.recorder.read_keys([oli])[oli]

    forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False)

    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert wrapped not in raw
    assert b"oli@example.com" not in raw
    assert scenario.OLI_PHONE.encode() not in raw


def test_a_store_in_clear_cannot_forget_and_says_why(database_url, events):
    engine = wiring.engine(Settings(database_url=database_url))
    try:
        engine.record(events.decode(*scenario.history(events)))
        with pytest.raises(ConfigurationError, match="in clear"):
            forget(engine, QUINN, at=NOW, reason_code="gdpr_art17", suppress=False)
        with pytest.raises(ConfigurationError, match="a code"):
            forget(engine, QUINN, at=NOW, reason_code="She asked us to!", suppress=False)
    finally:
        engine.close()


def test_a_second_engine_reads_the_forgotten_person_as_erased(engine, sealed):
    oli = forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False).lead_id
    other = wiring.engine(replace(sealed))
    try:
        assert {key.value for key in other.get_lead(oli).identifiers} == {ERASED}
    finally:
        other.close()


def test_a_forgotten_person_is_announced_erased_once_to_those_who_heard_of_them(
    engine, database_url
):
    from test_announcements import Clock, fold, stored_lead_events  # noqa: PLC0415

    store = ViewStore(database_url)
    store.setup()
    announcer = Announcer(sla_hours=24, clock=Clock(NOW))
    projection = LeadsProjection(default_rulebook())
    try:
        fold(store, projection, announcer, stored_lead_events(engine))
        seen = len(stored_lead_events(engine))
        forgotten = forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False)
        after = stored_lead_events(engine)[seen:]
        announced = fold(store, projection, announcer, after)
    finally:
        store.close()

    assert {e.event for e in after} == {"Erased"}
    assert {e.reason_code for e in after} == {"gdpr_art17"}
    assert [type(c) for c in announced] == [changes.Erased]
    assert announced[0].lead_id == forgotten.lead_id


def test_an_export_holds_the_person_before_and_nothing_personal_after(engine):
    before = encode(export_person(engine, OLI, at=NOW))
    lead_id = forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False).lead_id
    after = encode(export_person(engine, str(lead_id), at=NOW))

    assert b"oli@example.com" in before
    assert scenario.OLI_PHONE.encode() in before
    assert b"oli@example.com" not in after
    assert scenario.OLI_PHONE.encode() not in after
    assert b'"erased_at": "2026-04-01T00:00:00Z"' in after
    assert after.count(ERASED.encode()) >= 2


def test_a_person_recorded_in_clear_before_the_master_key_is_not_forgotten_by_half(
    database_url, events
):
    clear = Settings(database_url=database_url)
    engine = wiring.engine(clear)
    engine.record(events.decode(*scenario.history(events)))
    engine.close()
    engine = wiring.engine(replace(clear, master_key=new_master_key()))
    try:
        engine.record(events.decode(events.touchpoint("page_view", 31, email="quinn@example.com")))
        with pytest.raises(ConfigurationError, match="in clear"):
            forget(engine, QUINN, at=NOW, reason_code="gdpr_art17", suppress=False)
        assert engine.resolve(QUINN).erased_at is None
        # A person who came after the master key is forgotten as usual.
        engine.record(events.decode(events.touchpoint("form_fill", 31, email="new@example.com")))
        assert not forget(
            engine, "email:new@example.com", at=NOW, reason_code="x", suppress=False
        ).already
    finally:
        engine.close()


def test_another_process_holding_the_person_in_memory_shows_them_erased(sealed, engine):
    serving = wiring.engine(sealed)  # the API's engine, say: oli is in its cache
    try:
        lead_id = serving.resolve(OLI).id
        assert "oli@example.com" in {key.value for key in serving.get_lead(lead_id).identifiers}

        forget(engine, OLI, at=NOW, reason_code="gdpr_art17", suppress=False)

        shown = encode(export_person(serving, str(lead_id), at=NOW))
        assert b"oli@example.com" not in shown
        assert scenario.OLI_PHONE.encode() not in shown
        assert b'"erased_at": "2026-04-01T00:00:00Z"' in shown
    finally:
        serving.close()


def test_a_suppressed_person_named_as_referrer_gets_no_credit_and_is_not_recorded_again(
    engine, events
):
    forget(engine, "email:ann@example.com", at=NOW, reason_code="gdpr_art17", suppress=True)

    referred = engine.record(
        events.decode(
            events.touchpoint(
                "referral", 31, email="newbie@example.com", referrer={"email": "ann@example.com"}
            )
        )
    )
    referring = engine.record(
        events.decode(
            events.touchpoint(
                "referral", 31.5, email="ann@example.com", referrer={"email": "zed@example.com"}
            )
        )
    )

    assert referred.recorded == 1
    newbie = engine.resolve("email:newbie@example.com")
    assert all(getattr(f, "referrer_lead_id", None) is None for f in newbie.facts)
    assert referring.suppressed == 1
    for nobody in ("email:ann@example.com", "email:zed@example.com"):
        with pytest.raises(LeadNotFoundError):
            engine.resolve(nobody)


def test_a_write_of_other_leads_while_an_erasure_is_prepared_destroys_no_key(engine, events):
    oli = engine.resolve(OLI).id
    engine.keyring.erase([oli])  # an erasure being prepared in another thread
    try:
        engine.record(events.decode(events.touchpoint("page_view", 31, email="ben@example.com")))
    finally:
        engine.keyring.keep([oli])

    assert oli in engine.recorder.read_keys([oli])
