"""The README's recipes do what they say: docs/recipes/hot_leads_to_slack.py, run for real.

The receiver runs on a local port, a second local server stands in for Slack, and the
deliveries are signed as the webhook worker signs them.
"""

from __future__ import annotations

import base64
import importlib.util
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import uuid4

import pytest
from standardwebhooks import Webhook

from lifecycle.contracts import changes
from lifecycle.contracts.lead_events import rfc3339
from lifecycle.contracts.webhooks import body, secret_key, signed_headers
from lifecycle.domain.vocabulary import Temperature

RECIPE = Path(__file__).parents[2] / "docs" / "recipes" / "hot_leads_to_slack.py"
SECRET = "whsec_" + base64.b64encode(b"the slack recipe's secret, 32 b.").decode()


@pytest.fixture
def recipe():
    spec = importlib.util.spec_from_file_location("hot_leads_to_slack", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def slack(monkeypatch) -> Iterator[list[bytes]]:
    posted: list[bytes] = []

    class Slack(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server, url = serve(Slack)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    yield posted
    server.shutdown()
    server.server_close()


def delivery(change: changes.Change, *, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    """A change as the webhook worker POSTs it."""
    payload = body(changes.ce_type(change), rfc3339(change.at), changes.encode(change))
    headers = signed_headers(
        secret_key(secret), changes.change_id(change, "2026.1"), int(time.time()), payload
    )
    return payload, headers


def went(to: Temperature, was: Temperature | None) -> changes.TemperatureChanged:
    now = datetime.now(UTC)
    return changes.TemperatureChanged(
        lead_id=uuid4(), from_=was, to=to, at=now, observed_at=now, cause="fact", rules_version="1"
    )


def post(url: str, payload: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (http://127.0.0.1)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_slack_recipe_posts_a_lead_going_hot_once_and_ignores_the_rest(recipe, slack):
    recipe.Receiver.webhook = Webhook(SECRET)
    recipe.Receiver.log_message = lambda *_: None
    server, url = serve(recipe.Receiver)
    try:
        hot = delivery(went(Temperature.HOT, Temperature.WARM))
        statuses = [
            post(url, *hot),
            post(url, *hot),  # a redelivery: the same webhook-id
            post(url, *delivery(went(Temperature.WARM, Temperature.HOT))),
            post(url, *delivery(went(Temperature.HOT, None), secret="whsec_" + "A" * 44)),
        ]
    finally:
        server.shutdown()
        server.server_close()

    assert statuses == [204, 204, 204, 400]
    assert len(slack) == 1
    assert b"went hot (warm -> hot" in slack[0]
