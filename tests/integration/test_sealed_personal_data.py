"""Personal data at rest: sealed with each lead's key, opened only with the master key.

On SQLite and PostgreSQL. The raw database file is read for SQLite: no e-mail, phone, name,
free text or key is there in clear.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import scenario

from lifecycle import wiring
from lifecycle.adapters.keyring import new_master_key
from lifecycle.errors import ConfigurationError
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

PRIVATE = ("Sally Seller", "call her at home", "went with a competitor", "Ann")


def personal_history(events) -> list[dict]:
    """The scenario, with a salesperson's name and a private property besides."""
    qualification = events.qualification(13, bant=3, email="ann@example.com")
    qualification["data"]["assessed_by"] = "Sally Seller"
    return [
        *scenario.history(events),
        qualification,
        events.touchpoint(
            "page_view", 13.5, email="ann@example.com", properties={"note": "call her at home"}
        ),
    ]


@pytest.fixture
def sealed(database_url):
    """Settings with a master key."""
    return Settings(database_url=database_url, master_key=new_master_key())


def stored_bytes(database_url: str) -> bytes:
    """Every byte SQLite wrote for the store (the file, and its write-ahead log)."""
    path = Path(database_url.removeprefix("sqlite:///").split("?")[0])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_personal_fields_are_sealed_at_rest_and_open_with_the_master_key(sealed, events):
    engine = wiring.engine(sealed)
    try:
        engine.record(events.decode(*personal_history(events)))
        ann = engine.get_lead(engine.resolve("email:ann@example.com").id)
        oli = engine.get_lead(engine.resolve(f"phone:{scenario.OLI_PHONE}").id)
    finally:
        engine.close()

    assert ("email", "ann@example.com") in [(k.kind.value, k.value) for k in ann.identifiers]
    assert ann.profile["first_name"][1] == "Ann"
    assert any(getattr(f, "assessed_by", None) == "Sally Seller" for f in ann.facts)
    assert any(
        f.properties.get("note") == "call her at home"
        for f in ann.facts
        if hasattr(f, "properties")
    )
    assert scenario.OLI_PHONE in [k.value for k in oli.identifiers]
    if sealed.database_url.startswith("sqlite"):
        raw = stored_bytes(sealed.database_url)
        assert b"@example.com" not in raw
        assert scenario.OLI_PHONE.encode() not in raw
        for text in PRIVATE:
            assert text.encode() not in raw, text


def test_a_sealed_store_does_not_open_without_its_master_key_and_says_which_to_set(sealed, events):
    engine = wiring.engine(sealed)
    engine.record(events.decode(*scenario.history(events)))
    engine.close()

    with pytest.raises(ConfigurationError, match="LIFECYCLE_MASTER_KEY"):
        wiring.engine(replace(sealed, master_key=""))
    other = wiring.engine(replace(sealed, master_key=new_master_key()))
    try:
        with pytest.raises(ConfigurationError, match="another master key"):
            other.get_lead(other.resolve("email:ann@example.com").id)
    finally:
        other.close()


def test_the_views_of_a_sealed_store_are_the_views_of_a_clear_one(sealed, events, tmp_path):
    def figures(settings: Settings) -> dict[str, list[tuple]]:
        engine = wiring.engine(settings)
        store = ViewStore(f"sqlite:///{tmp_path}/{settings.master_key[:12] or 'clear'}.db")
        try:
            engine.record(events.decode(*personal_history(events)))
            rules = default_rulebook()
            swap(store, fill_from_store(engine, store, rules, settings), rules)
            with store.reading() as tx:
                return {
                    view: sorted(map(tuple, tx.rows(f"SELECT * FROM {view}")), key=repr)
                    for view in ("lifecycle_funnel", "lifecycle_cost_per_lead")
                }
        finally:
            store.close()
            engine.close()

    assert figures(sealed) == figures(Settings(database_url=f"sqlite:///{tmp_path}/clear-store.db"))
