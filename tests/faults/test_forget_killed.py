"""A ``lifecycle forget`` killed (SIGKILL) in the middle of its transaction, then run again.

The test holds a lock the erasure needs, so the process is stopped midway for sure: on
PostgreSQL a lock on the person's key row (the process waits on it, as pg_stat_activity
shows), on SQLite the database's write lock. Killed there, nothing of the erasure is kept;
run again, the person is forgotten wholly.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import scenario

from lifecycle import wiring
from lifecycle.adapters.database_url import parse
from lifecycle.adapters.keyring import new_master_key
from lifecycle.errors import LeadNotFoundError
from lifecycle.settings import Settings

OLI = "email:oli@example.com"


def state(settings: Settings) -> tuple[bool, bool]:
    """(oli's e-mail resolves, the lead it resolves to is erased)."""
    engine = wiring.engine(settings)
    try:
        try:
            lead = engine.resolve(OLI)
        except LeadNotFoundError:
            lead = None
        return lead is not None, lead is not None and lead.erased_at is not None
    finally:
        engine.close()


def keys_left(settings: Settings, lead_ids) -> int:
    engine = wiring.engine(settings)
    try:
        return len(engine.recorder.read_keys(list(lead_ids)))
    finally:
        engine.close()


@pytest.fixture
def sealed(database_url, events):
    settings = Settings(database_url=database_url, master_key=new_master_key(), log_format="json")
    engine = wiring.engine(settings)
    engine.record(events.decode(*scenario.history(events)))
    engine.close()
    return settings


def hold_the_lock(settings: Settings, lead_id):
    """A connection holding what the erasure must write (until closed)."""
    url = parse(settings.database_url)
    if url.dialect == "sqlite":
        connection = sqlite3.connect(str(url.file), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        return connection
    connection = psycopg.connect(
        dbname=url.dbname, host=url.host, port=url.port, user=url.user, autocommit=False
    )
    connection.execute(
        f'SELECT 1 FROM "{url.schema}".lifecycle_keys WHERE lead_id = %s FOR UPDATE', [lead_id]
    )
    return connection


def waiting(settings: Settings) -> bool:
    """Whether the forget process is stopped on the lock (PostgreSQL can tell; SQLite: time)."""
    url = parse(settings.database_url)
    if url.dialect == "sqlite":
        return False
    with psycopg.connect(dbname=url.dbname, host=url.host, port=url.port, user=url.user) as c:
        rows = c.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE '%%lifecycle_keys%%'"
        ).fetchone()
    return bool(rows and rows[0])


def test_a_forget_killed_midway_keeps_nothing_and_run_again_forgets_wholly(sealed, tmp_path):
    engine = wiring.engine(sealed)
    oli = engine.resolve(OLI).id
    leads = {oli, engine.resolve(f"phone:{scenario.OLI_PHONE}").id} | set(
        engine.resolve(OLI).absorbed
    )
    engine.close()
    env = {**os.environ, **sealed.environment()}
    command = [sys.executable, "-m", "lifecycle", "forget", OLI, "--reason", "gdpr_art17"]
    log = tmp_path / "forget.log"

    lock = hold_the_lock(sealed, oli)
    try:
        with log.open("ab") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=output)
        # SQLite cannot say who waits: its imports and reads are done well within 4 s.
        until = time.monotonic() + (4 if sealed.database_url.startswith("sqlite") else 30)
        while not waiting(sealed) and time.monotonic() < until:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        assert sealed.database_url.startswith("sqlite") or waiting(sealed), "never waited"
        assert process.poll() is None, log.read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        lock.close()

    assert state(sealed) == (True, False), "a killed erasure kept something"
    assert keys_left(sealed, leads) == len(leads)

    again = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert again.returncode == 0, again.stderr
    assert "forgot lead" in again.stdout
    assert state(sealed) == (False, False)
    assert keys_left(sealed, leads) == 0
    if sealed.database_url.startswith("sqlite"):
        path = Path(parse(sealed.database_url).file)
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert b"oli@example.com" not in raw
