"""``lifecycle run`` and ``lifecycle dlq`` as a user runs them: real processes, real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from kafka_testing import binary, read_topic, structured, wait_for

from consumers.dead_letters import PREFIX
from lifecycle import wiring


def lifecycle(settings, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings.environment()}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def test_run_takes_touchpoints_through_to_lead_events_and_stops_cleanly_on_sigterm(
    settings, produce, events, tmp_path
):
    produce(
        [
            (b"ann", *structured(events.touchpoint("form_fill", 0, email="ann@example.com"))),
            (b"ann", *binary(events.touchpoint("demo_request", 1, email="ann@example.com"))),
        ]
    )
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "run"],
            env={**os.environ, **settings.environment()},
            stdout=output,
            stderr=output,
        )
        try:
            wait_for(
                lambda: (
                    {
                        dict(r.headers).get("ce_type", b"").decode()
                        for r in read_topic(settings.kafka_bootstrap, settings.lead_events_topic)
                    }
                    >= {"lifecycle.lead.FactRecorded"}
                ),
                what="lead events on lead.events",
            )
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)

    assert code == 0, log.read_text()
    assert "stopped cleanly" in log.read_text()
    published = read_topic(settings.kafka_bootstrap, settings.lead_events_topic)
    facts = [r for r in published if dict(r.headers)["ce_type"] == b"lifecycle.lead.FactRecorded"]
    store = wiring.engine_at(settings.database_url)
    lead = store.resolve("email:ann@example.com")
    store.close()
    assert len(facts) == 2
    assert {r.key for r in facts} == {str(lead.id).encode()}
    assert {dict(r.headers)["ce_id"] for r in facts} == {
        f"{lead.id}:{version}".encode() for version in (3, 5)
    }
    assert b"ann@example.com" not in b"".join(r.value + r.key for r in published)


def test_dlq_show_lists_dead_letters_and_redrive_sends_them_back_as_they_came(
    settings, produce, events
):
    broken = events.touchpoint("sneeze", 0, email="bo@example.com")
    produce([(b"bo", *structured(broken))])
    ingest = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "ingest"],
        env={**os.environ, **settings.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: len(read_topic(settings.kafka_bootstrap, settings.dead_letter_topic)) == 1,
            what="the dead letter",
        )
    finally:
        ingest.send_signal(signal.SIGTERM)
        assert ingest.wait(timeout=60) == 0

    shown = lifecycle(settings, "dlq", "show", "--json")
    [letter] = [json.loads(line) for line in shown.stdout.splitlines() if line.startswith("{")]
    assert shown.returncode == 0, shown.stderr
    assert letter["reason"].startswith("not an allowed value; expected one of page_view")
    assert letter["reason"].endswith("(at $.data.kind)")
    assert letter["original_topic"] == settings.touchpoints_topic

    unknown = lifecycle(settings, "dlq", "redrive", "9:999")
    redriven = lifecycle(settings, "dlq", "redrive", letter["ref"])

    assert unknown.returncode == 1
    assert "no dead letter 9:999" in unknown.stderr
    assert redriven.returncode == 0, redriven.stderr
    back = read_topic(settings.kafka_bootstrap, settings.touchpoints_topic)
    assert len(back) == 2
    assert back[-1].value == back[0].value
    assert not [name for name, _ in back[-1].headers if name.startswith(PREFIX)]
