"""A receiver for lead-lifecycle webhooks that tells a Slack channel when a lead goes hot.

Run it behind HTTPS and point an endpoint at it (``types = ["TemperatureChanged"]``):

    pip install standardwebhooks
    LIFECYCLE_WEBHOOK_SECRET=whsec_... SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... \
        python hot_leads_to_slack.py 8080

Every delivery is verified with the endpoint's secret (Standard Webhooks); a repeat (the same
``webhook-id``, after a retry or a redelivery) is answered 200 and not posted again. The body
names the lead by its id only (no personal data leaves the engine): the link goes to the
lead in the engine's read API, for those allowed to read it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from standardwebhooks import Webhook, WebhookVerificationError

ENGINE_API = os.environ.get("LIFECYCLE_API", "http://localhost:8000/api")
SEEN_IDS = 10_000  # repeats come soon after the first delivery: the recent ids are enough


def slack_message(delivery: dict[str, Any]) -> dict[str, str] | None:
    """The Slack message for a verified delivery, or None when it is not about a lead going hot."""
    if delivery["type"] != "lifecycle.lead.TemperatureChanged":
        return None
    change = delivery["data"]
    if change["to"] != "hot":
        return None
    lead = change["lead_id"]
    was = change["from"] or "new"
    return {
        "text": f":fire: A lead went hot ({was} -> hot at {change['at']}): "
        f"<{ENGINE_API}/leads/{lead}|lead {lead[:8]}>"
    }


class Receiver(BaseHTTPRequestHandler):
    """Verifies, drops repeats, posts to Slack; 2xx only once the message is posted."""

    webhook: Webhook  # set from LIFECYCLE_WEBHOOK_SECRET when the server starts
    seen: ClassVar[OrderedDict[str, None]] = OrderedDict()

    def do_POST(self) -> None:
        """One delivery."""
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            delivery = self.webhook.verify(body, dict(self.headers))
        except WebhookVerificationError:
            self._answer(400)  # final: the engine does not retry a 4xx other than 408/429
            return
        webhook_id = self.headers["webhook-id"]
        message = slack_message(delivery)
        if message is not None and webhook_id not in self.seen:
            request = urllib.request.Request(  # noqa: S310 (the Slack URL is https)
                os.environ["SLACK_WEBHOOK_URL"],
                data=json.dumps(message).encode(),
                headers={"content-type": "application/json"},
            )
            try:
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
            except OSError:
                self._answer(503)  # Slack away: the engine retries with backoff
                return
        self.seen[webhook_id] = None
        while len(self.seen) > SEEN_IDS:
            self.seen.popitem(last=False)
        self._answer(204)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    Receiver.webhook = Webhook(os.environ["LIFECYCLE_WEBHOOK_SECRET"])
    ThreadingHTTPServer(("", port), Receiver).serve_forever()
