"""Signed webhooks to a real local HTTP receiver, verified with the ``standardwebhooks`` package.

Three endpoints: one that always answers 200, one that fails its first requests with 500 and
then answers, and one that never answers well. The changes come from the scenario, through the
broker (relay, views worker, changes publisher), as in production.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import scenario
import standardwebhooks
from kafka_testing import running, wait_for

from consumers import kafka
from consumers.changes import ChangesPublisher
from consumers.relay import Relay
from consumers.views import ViewsWorker
from consumers.webhooks import redrive_webhooks
from lifecycle import wiring
from lifecycle.projections import outbox
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two byte").decode()


@dataclass
class Receiver:
    """A local HTTP server: what each path received, and how many requests it fails first."""

    fail_first: dict[str, int] = field(default_factory=dict)
    always_fail: set[str] = field(default_factory=set)
    delay: float = 0.0
    """Seconds each request takes (a slow endpoint)."""
    slow: dict[str, float] = field(default_factory=dict)
    """Seconds each request to this path takes."""
    received: dict[str, list[tuple[dict[str, str], bytes]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = self.rfile.read(int(self.headers["content-length"]))
            time.sleep(state.slow.get(self.path, state.delay))
            with state.lock:
                state.attempts[self.path] += 1
                failing = self.path in state.always_fail or (
                    state.attempts[self.path] <= state.fail_first.get(self.path, 0)
                )
                if not failing:
                    state.received[self.path].append((dict(self.headers), payload))
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # every endpoint's deliveries at once, none reset

    server = Server(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def endpoints_file(tmp_path, port: int) -> object:
    path = tmp_path / "webhooks.toml"
    path.write_text(
        f"""
[[endpoint]]
name = "crm"
url = "http://127.0.0.1:{port}/crm"
secret = "{SECRET}"

[[endpoint]]
name = "sales"
url = "http://127.0.0.1:{port}/sales"
secret = "{SECRET}"
types = ["StageChanged", "HandoffOverdue"]
retry_seconds = 0.05

[[endpoint]]
name = "dead"
url = "http://127.0.0.1:{port}/dead"
secret = "{SECRET}"
max_attempts = 3
retry_seconds = 0.05
"""
    )
    return path


def announced_changes(settings, events) -> list[outbox.Stored]:
    """The scenario through relay, views and publisher onto lead.lifecycle; the outbox."""
    engine = wiring.engine_at(settings.database_url)
    engine.record(events.decode(*scenario.history(events)))
    Relay(engine=engine, settings=settings).publish_pending()
    engine.close()
    store = ViewStore(settings.views_database_url)
    store.setup()
    views = ViewsWorker(
        store=ViewStore(settings.views_database_url), rules=default_rulebook(), settings=settings
    )
    publisher = ChangesPublisher(store=ViewStore(settings.views_database_url), settings=settings)

    def stored() -> list[outbox.Stored]:
        with store.reading() as tx:
            return outbox.after(tx, 0, 10**6)

    def published() -> int:
        with store.reading() as tx:
            return outbox.published(tx)[0]

    try:
        with running(views), running(publisher):
            wait_for(
                lambda: len(stored()) > 60 and published() == stored()[-1].seq,
                what="the changes published",
            )
        return stored()
    finally:
        views.store.close()
        publisher.store.close()
        store.close()


def verified(received: list[tuple[dict[str, str], bytes]]) -> list[tuple[str, dict]]:
    """Each delivery checked by the Standard Webhooks library: (webhook-id, body)."""
    webhook = standardwebhooks.Webhook(SECRET)
    return [
        (headers["webhook-id"], webhook.verify(payload, headers)) for headers, payload in received
    ]


def in_order_per_lead(deliveries: list[tuple[str, dict]], order: dict[str, int]) -> bool:
    seqs: dict[str, list[int]] = defaultdict(list)
    firsts: set[str] = set()
    for change_id, body in deliveries:
        if change_id not in firsts:
            firsts.add(change_id)
            seqs[body["data"]["lead_id"]].append(order[change_id])
    return all(s == sorted(s) for s in seqs.values())


def test_endpoints_get_their_changes_signed_in_order_a_flapping_one_too_a_dead_one_in_the_dlq(
    settings, events, receiver, tmp_path
):
    settings = replace(settings, webhooks=endpoints_file(tmp_path, receiver.port))
    receiver.fail_first["/sales"] = 5
    receiver.always_fail.add("/dead")
    receiver.slow["/dead"] = 0.1  # slow and failing: it takes far longer than the others
    stored = announced_changes(settings, events)
    order = {s.id: s.seq for s in stored}
    wanted = {s.id for s in stored if s.type in {"StageChanged", "HandoffOverdue"}}
    workers = wiring.webhook_workers(settings)
    crm, sales, dead = workers

    with running(crm), running(sales), running(dead):
        wait_for(
            lambda: (
                len(receiver.received["/crm"]) >= len(stored)
                and {h["webhook-id"] for h, _ in receiver.received["/sales"]} >= wanted
            ),
            what="crm and sales to receive their changes",
        )
        # The dead endpoint is still at it: the healthy ones did not wait for it.
        crm_done_while_dead_failed = _dead_letters(settings) < len(stored)
        wait_for(
            lambda: _dead_letters(settings) >= len(stored), timeout=120, what="dead's dead letters"
        )

    crm_got, sales_got = verified(receiver.received["/crm"]), verified(receiver.received["/sales"])
    assert {change_id for change_id, _ in crm_got} == set(order)
    assert {change_id for change_id, _ in sales_got} == wanted
    assert in_order_per_lead(crm_got, order)
    assert in_order_per_lead(sales_got, order)
    assert crm_done_while_dead_failed, "the dead endpoint held the healthy one back"
    assert receiver.attempts["/sales"] == len(wanted) + 5
    letters = _dead_letter_headers(settings)
    assert len(letters) == len(stored)
    assert all(
        h["webhook-endpoint"] == b"dead" and h["webhook-last-status"] == b"500" for h in letters
    )
    text = b" ".join(p for got in receiver.received.values() for _, p in got)
    assert b"@example.com" not in text
    assert SECRET.encode() not in text

    receiver.always_fail.clear()  # the dead endpoint is back: redrive what it missed
    outcomes = redrive_webhooks(
        settings, {w.endpoint.name: w for w in wiring.webhook_workers(settings)}
    )
    assert outcomes == {"delivered": len(stored)}
    assert {change_id for change_id, _ in verified(receiver.received["/dead"])} == set(order)


def test_a_webhook_worker_killed_mid_stream_loses_nothing_and_repeats_with_the_same_ids(
    settings, events, receiver, tmp_path
):
    path = tmp_path / "one.toml"
    path.write_text(
        f'[[endpoint]]\nname = "crm"\nurl = "http://127.0.0.1:{receiver.port}/crm"\n'
        f'secret = "{SECRET}"\nmax_in_flight = 1\n'
    )
    settings = replace(settings, webhooks=path)
    stored = announced_changes(settings, events)
    receiver.delay = 0.02  # slow enough to be killed mid-stream: a few seconds in all
    env = {**os.environ, **settings.environment(), "LIFECYCLE_BATCH_SIZE": "10"}
    log = tmp_path / "webhooks.log"
    with log.open("ab") as output:
        first = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "webhooks"], env=env, stdout=output, stderr=output
        )
        wait_for(lambda: len(receiver.received["/crm"]) > 15, what="some deliveries")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert len(receiver.received["/crm"]) < len(stored), "killed after the stream, not in it"
        second = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "webhooks"], env=env, stdout=output, stderr=output
        )
        try:
            wait_for(
                lambda: (
                    {h["webhook-id"] for h, _ in receiver.received["/crm"]}
                    >= {s.id for s in stored}
                ),
                what="every change delivered",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()

    bodies: dict[str, set[bytes]] = defaultdict(set)
    for change_id, body in verified(receiver.received["/crm"]):
        bodies[change_id].add(repr(sorted(body["data"].items())).encode())
    assert set(bodies) == {s.id for s in stored}
    assert all(len(b) == 1 for b in bodies.values()), "a repeat carried another body"


def _dead_letter_headers(settings) -> list[dict[str, bytes]]:
    whole = kafka.WholeTopic(settings, settings.webhooks_dead_letter_topic, quiet_seconds=1.0)
    try:
        return [dict(m.headers) for _, ms in whole.batches() for m in ms]
    finally:
        whole.close()


def _dead_letters(settings) -> int:
    return len(_dead_letter_headers(settings))
