"""No e-mail, phone or name reaches a log line, whatever the input."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import msgspec
import pytest
from harness import (
    Message,
    pipeline_settings,
    produce,
    refused,
    stream,
    wait_for_outcome,
    wait_until,
    workers,
)

from consumers.dead_letters import read_dead_letters
from lifecycle import wiring
from lifecycle.demo.broker import free_port
from lifecycle.projections.store import ViewStore

pytestmark = pytest.mark.faults

_encode = msgspec.json.encode


def _touch(number: int, **data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hostile-{number}",
        "source": "https://hostile.example.com",
        "type": "lead.touchpoint",
        "time": "2026-10-01T09:00:00Z",
        "data": {"kind": "page_view", "identity": {"email": f"h{number}@example.com"}, **data},
    }


HOSTILE_NAMES = {"Hostile Seniorname", "Hostile Countryname", "Hostile Nobodyname"}


def hostile() -> list[Message]:
    """Messages that put personal data where the engine refuses something (and so reports)."""
    events = [
        _touch(1, kind="buy pii-kind@example.com"),
        _touch(2, campaign={"id": "c", "channel": "mail pii-channel@example.com"}),
        _touch(3, profile={"seniority": "Hostile Seniorname"}),
        _touch(4, profile={"country": "Hostile Countryname"}),
        _touch(5, kind="purchase", amount_minor=1, currency="pii-currency@example.com"),
        _touch(6, identity={"email": "pii-bad@@example.com"}),
        _touch(7, identity={"phone": "+1 555 0199 pii-phone@example.com"}),
        _touch(8, kind="purchase", amount_minor="pii-amount@example.com", currency="EUR"),
        _touch(9, properties={"k": {"nested": "pii-nested@example.com"}}),
        _touch(10, kind="referral", referrer={"email": "pii-referrer@@example.com"}),
        _touch(11, identity={}, profile={"first_name": "Hostile", "last_name": "Nobodyname"}),
        _touch(12, identity={"email": "pii-nul\u0000@example.com"}),
        _touch(13, properties={"pii-key@example.com\u0001": 1}),
        {**_touch(14), "type": "lead.pii-type@example.com"},
        {**_touch(15), "specversion": "pii-spec@example.com"},
        {**_touch(16), "time": "pii-time@example.com"},
    ]
    messages: list[Message] = [(b"hostile", _encode(event)) for event in events]
    messages.append((b"hostile", b'{"data": {"identity": {"email": "pii-json@example.com"'))
    messages.append((b"hostile", _encode({"note": "pii-big@example.com " * 20_000})))
    return messages


def personal_data(messages: list[Message]) -> set[str]:
    """Every e-mail, phone and name the messages carry, as they might be written out."""
    found: set[str] = set()
    for _, value in messages:
        text = value.decode(errors="replace")
        found.update(m.lower() for m in re.findall(r"[\w.+-]+@+[\w-]+\.[\w.]+", text))
        try:
            event = json.loads(value)
        except ValueError:
            continue
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            continue
        identity = data.get("identity") or {}
        phone = identity.get("phone") if isinstance(identity, dict) else None
        if isinstance(phone, str):
            found.add(phone)
            found.add("+" + re.sub(r"\D", "", phone))
        profile = data.get("profile") or {}
        if isinstance(profile, dict):
            names = [profile.get(k) for k in ("first_name", "last_name")]
            if all(isinstance(n, str) for n in names):
                found.add(" ".join(names))  # type: ignore[arg-type]
            if isinstance(profile.get("company"), str):
                found.add(profile["company"])
    return {item for item in found if item} | HOSTILE_NAMES


def test_no_personal_data_reaches_a_log_line_whatever_the_input(
    broker, sqlite_url, clean_run, tmp_path
):
    messages = [*stream(80, seed=9), *hostile()]
    # A webhook endpoint nobody answers: its retries and dead letters are logged too.
    hooks = tmp_path / "webhooks.toml"
    secret = "whsec_" + base64.b64encode(b"a test secret of thirty-two byte").decode()
    hooks.write_text(
        f'[[endpoint]]\nname = "crm"\nurl = "http://127.0.0.1:{free_port()}/hook"\n'
        f'secret = "{secret}"\nmax_attempts = 2\nretry_seconds = 0.05\n'
    )
    settings = pipeline_settings(sqlite_url, broker.bootstrap, webhooks=hooks)
    engine = wiring.engine_at(sqlite_url)
    views = ViewStore(sqlite_url)
    wanted = {item.lower() for item in personal_data(messages)}
    assert any(item.startswith("pii-kind") for item in wanted)
    port = free_port()
    try:
        with workers() as start:
            run = start(settings, tmp_path / "run.log", "run")
            serve = start(settings, tmp_path / "serve.log", "serve", "--port", str(port))
            produce(broker.bootstrap, messages)
            wait_until(
                lambda: len(read_dead_letters(settings)) == refused(messages),
                timeout=120,
                what="every refused message on the dead-letter topic",
            )
            wait_for_outcome(
                engine, views, clean_run(messages), timeout=120, what="the views to catch up"
            )
            for query in ("email:person0001@example.com", "email:nobody-known@example.com"):
                _get(f"http://127.0.0.1:{port}/api/leads?identity={query}")
            _get(f"http://127.0.0.1:{port}/api/leads/not-a-uuid-pii-path@example.com")
            assert run.alive()
            assert serve.alive()
        # The file importer's report of rejected lines, too.
        lines = tmp_path / "input.jsonl"
        lines.write_bytes(b"\n".join(value for _, value in messages) + b"\n")
        imported = subprocess.run(
            [sys.executable, "-m", "lifecycle", "import", str(lines)],
            env={**settings.environment(), "LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path}/i.db"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert imported.returncode == 1, imported.stderr  # some lines were rejected
        logs = {
            "run": run.log.read_text(),
            "serve": serve.log.read_text(),
            "import": imported.stdout + imported.stderr,
        }
        assert "dead_lettered" in logs["run"]
        assert "changes_published" in logs["run"]
        assert "webhook_dead_lettered" in logs["run"]
        assert secret not in logs["run"]
        for name, text in logs.items():
            seen = sorted(item for item in wanted if item in text.lower())
            assert not seen, f"personal data in the {name} log: {seen[:5]}"
    finally:
        views.close()
        engine.close()


def _get(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10):  # noqa: S310 (a local test server)
            pass
    except urllib.error.HTTPError:
        pass  # a 404 or 400 is fine: what matters is what the server logged
