"""Identity ids keyed by LIFECYCLE_IDENTITY_SECRET: an id says nothing without the secret.

A store remembers how its ids are made, and is only opened that way again.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import uuid5

import pytest
import scenario

from lifecycle import wiring
from lifecycle.aggregates import Identity
from lifecycle.domain.identity import NAMESPACE, IdentityKey, use_identity_secret
from lifecycle.errors import ConfigurationError
from lifecycle.settings import Settings

SECRET = "a secret of thirty-two characters!"  # noqa: S105 (a test's)


@pytest.fixture(autouse=True)
def _uuid5_afterwards():
    yield
    use_identity_secret(None)  # (the process default, for the tests after these)


def test_with_a_secret_the_uuid5_of_an_e_mail_finds_nothing_and_the_e_mail_finds_its_lead(
    database_url, events
):
    engine = wiring.engine(Settings(database_url=database_url, identity_secret=SECRET))
    try:
        engine.record(events.decode(*scenario.history(events)))
        ann = engine.resolve("email:ann@example.com")
        guessed = uuid5(NAMESPACE, "identity:email:ann@example.com")
        keyed = IdentityKey.parse("email:ann@example.com").identity_id

        assert engine.get(Identity, guessed) is None
        assert keyed != guessed
        assert engine.get(Identity, keyed).lead_id == ann.id
        assert len(engine.resolve("email:oli@example.com").absorbed) == 1  # stitching as before
    finally:
        engine.close()


def test_a_store_opens_only_with_the_ids_it_was_made_with(database_url, events):
    keyed = Settings(database_url=database_url, identity_secret=SECRET)
    engine = wiring.engine(keyed)
    engine.record(events.decode(*scenario.history(events)))
    engine.close()

    for other, reason in [
        (replace(keyed, identity_secret=""), "keyed by a secret"),
        (replace(keyed, identity_secret=SECRET[::-1]), "keyed by a secret"),
    ]:
        with pytest.raises(ConfigurationError, match=reason):
            wiring.engine(other)
    again = wiring.engine(keyed)
    try:
        assert again.resolve("email:ann@example.com").captured_at is not None
    finally:
        again.close()


def test_a_store_made_before_keyed_ids_stays_on_uuid5_and_says_so(database_url, events):
    before = Settings(database_url=database_url)
    engine = wiring.engine(before)
    engine.record(events.decode(*scenario.history(events)))
    engine.close()

    with pytest.raises(ConfigurationError, match="uuid5"):
        wiring.engine(replace(before, identity_secret=SECRET))


def test_a_short_identity_secret_is_refused_with_its_length():
    with pytest.raises(ConfigurationError, match="32 characters"):
        Settings.from_env({"LIFECYCLE_IDENTITY_SECRET": "short"})
