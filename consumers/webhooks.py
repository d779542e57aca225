"""Webhooks: the changes of ``lead.lifecycle`` POSTed, signed, to the endpoints that want them.

Each endpoint reads the topic in a consumer group of its own (signing is in
``lifecycle/contracts/webhooks.py``), so one endpoint never waits for another: a slow or dead
endpoint holds only its own group. Within an endpoint, up to ``max_in_flight`` leads are
delivered to at once, and one lead's changes one after the other, in order. A failed attempt
(no answer, a timeout, 408, 429 or 5xx) is tried again with exponential backoff and jitter (a
429's ``Retry-After`` is honoured); another 4xx is final. A change not delivered within the
endpoint's attempts or age limit goes to ``lead.lifecycle.webhooks.dlq`` with the endpoint and
the last status, and the others go on. Offsets are committed once every change of a batch was
delivered or set aside: a worker killed mid-batch delivers its batch again, with the same
``webhook-id``. Redirects are not followed; secrets and URLs are never logged.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from consumers import kafka
from consumers.admin import create_topics, dead_letter_configs
from consumers.worker import backoff, transient, will_retry
from lifecycle.adapters.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_DELIVERIES, WEBHOOK_SECONDS
from lifecycle.contracts.webhooks import Endpoint, body, signed_headers
from lifecycle.settings import Settings

log = structlog.get_logger()

MAX_RETRY_SECONDS = 60.0
RETRIED_STATUSES = {408, 429}


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the status (None: no answer) and a ``Retry-After`` in seconds."""

    status: int | None
    retry_after: float | None = None
    error: str | None = None


Post = Callable[[Endpoint, bytes, dict[str, str]], Answer]


def post(endpoint: Endpoint, payload: bytes, headers: dict[str, str]) -> Answer:
    """POST with the standard library: no redirects followed, the endpoint's timeout."""
    parts = urlsplit(endpoint.url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(
        parts.hostname or "", parts.port, timeout=endpoint.timeout_seconds
    )
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        connection.request("POST", path, body=payload, headers=headers)
        response = connection.getresponse()
        response.read()
        return Answer(response.status, _retry_after(response.getheader("retry-after")))
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, error=type(error).__name__)
    finally:
        connection.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class Stopped(Exception):  # noqa: N818 (a signal, not an error)
    """The worker was told to stop in the middle of a batch: nothing of it is committed."""


class WebhookWorker:
    """Delivers ``lead.lifecycle`` to one endpoint until stopped."""

    name = "webhooks"

    def __init__(self, *, endpoint: Endpoint, settings: Settings, send: Post = post) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.send = send
        self.group = f"{settings.webhooks_group}-{endpoint.name}"
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        """Consume and deliver until ``stop`` is set."""
        consumer = kafka.consumer(self.settings, group_id=self.group)
        consumer.subscribe([self.settings.changes_topic])
        log.info("webhooks_started", endpoint=self.endpoint.name, group=self.group)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    batches = consumer.poll(timeout_ms=200, max_records=self.settings.batch_size)
                    if batches:
                        self.deliver([m for ms in batches.values() for m in ms], stop)
                        consumer.commit(_next_offsets(batches))
                except Stopped:
                    return
                except Exception as error:
                    if not transient(error):
                        raise
                    failures += 1
                    stop.wait(will_retry(self.name, error, failures, backoff(failures)))
                    _rewind(consumer)
                else:
                    failures = 0
        finally:
            consumer.close(autocommit=False)
            self.close()
            log.info("webhooks_stopped", endpoint=self.endpoint.name)

    def close(self) -> None:
        """Close the dead-letter producer, if one was made."""
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None

    def deliver(self, messages: Iterable[ConsumerRecord], stop: threading.Event) -> None:
        """Deliver (or set aside) every message: leads at once, each lead's in order."""
        by_lead: dict[bytes, list[ConsumerRecord]] = defaultdict(list)
        for message in messages:
            by_lead[message.key or b""].append(message)
        with ThreadPoolExecutor(self.endpoint.max_in_flight) as pool:
            done = [pool.submit(self._deliver_lead, ms, stop) for ms in by_lead.values()]
        for future in done:
            future.result()  # raises Stopped, or a failure to dead-letter

    def _deliver_lead(self, messages: list[ConsumerRecord], stop: threading.Event) -> None:
        for message in messages:
            if stop.is_set():
                raise Stopped
            self.deliver_one(message, stop)

    def deliver_one(self, message: ConsumerRecord, stop: threading.Event) -> str:
        """Deliver one change, retrying; ``delivered``, ``skipped`` or ``dead_lettered``."""
        headers = {k: v.decode(errors="replace") for k, v in message.headers}
        ce_type = headers.get("ce_type", "")
        if not self.endpoint.wants(ce_type):
            return "skipped"
        payload = body(ce_type, headers.get("ce_time", ""), message.value or b"null")
        endpoint, started, attempts = self.endpoint, time.monotonic(), 0
        while True:
            attempts += 1
            signed = signed_headers(
                endpoint.key, headers.get("ce_id", ""), int(time.time()), payload
            )
            with WEBHOOK_SECONDS.labels(endpoint=endpoint.name).time():
                answer = self.send(endpoint, payload, signed)
            status = answer.status
            if status is not None and 200 <= status < 300:
                return self._outcome("delivered", attempts)
            final = status is not None and status < 500 and status not in RETRIED_STATUSES
            aged = time.monotonic() - started >= endpoint.max_age_seconds
            if final or aged or attempts >= endpoint.max_attempts:
                self._dead_letter(message, answer, attempts)
                return self._outcome("dead_lettered", attempts)
            delay = answer.retry_after if status == 429 else None
            if delay is None:
                ceiling = min(endpoint.retry_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
                delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter)
            log.info(
                "webhook_will_retry",
                endpoint=endpoint.name,
                status=status,
                error=answer.error,
                attempt=attempts,
                retry_in=round(delay, 3),
            )
            if stop.wait(delay):
                raise Stopped

    def _outcome(self, outcome: str, attempts: int) -> str:
        WEBHOOK_DELIVERIES.labels(endpoint=self.endpoint.name, outcome=outcome).inc()
        WEBHOOK_ATTEMPTS.labels(endpoint=self.endpoint.name).observe(attempts)
        return outcome

    def _dead_letter(self, message: ConsumerRecord, answer: Answer, attempts: int) -> None:
        """Set the change aside with the endpoint, the last status and the attempts."""
        topic = self.settings.webhooks_dead_letter_topic
        extra = [
            ("webhook-endpoint", self.endpoint.name.encode()),
            ("webhook-last-status", str(answer.status or "none").encode()),
            ("webhook-attempts", str(attempts).encode()),
        ]
        if answer.error:
            extra.append(("webhook-error", answer.error.encode()))
        with self._lock:
            if self._producer is None:
                create_topics(
                    self.settings.kafka_bootstrap,
                    [topic],
                    partitions=1,
                    configs=dead_letter_configs(self.settings.dlq_retention_days),
                )
                self._producer = kafka.producer(self.settings)
            future = self._producer.send(
                topic, message.value, key=message.key, headers=[*message.headers, *extra]
            )
            future.get(timeout=30)
        log.warning(
            "webhook_dead_lettered",
            endpoint=self.endpoint.name,
            status=answer.status,
            error=answer.error,
            attempts=attempts,
        )


def _next_offsets(
    batches: dict[TopicPartition, list[ConsumerRecord]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    return {p: OffsetAndMetadata(m[-1].offset + 1, "", -1) for p, m in batches.items()}


def _rewind(consumer: KafkaConsumer) -> None:
    """After a failed batch, read again from the committed offsets."""
    for partition in consumer.assignment():
        committed = consumer.committed(partition)
        if committed is None:
            consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)


def redrive_webhooks(
    settings: Settings, workers: dict[str, WebhookWorker], *, only: str | None = None
) -> dict[str, int]:
    """Deliver every change in the webhooks DLQ again to its endpoint; outcomes counted.

    Kafka keeps what was set aside: a change delivered by a redrive stays in the topic, and a
    second redrive delivers it again (with its ``webhook-id``, so receivers drop the repeat).
    One that fails again is set aside again.
    """
    whole = kafka.WholeTopic(
        settings, settings.webhooks_dead_letter_topic, quiet_seconds=0.5, timeout_seconds=60
    )
    with contextlib.closing(whole):
        letters = [m for _, ms in whole.batches() for m in ms]
    outcomes: dict[str, int] = defaultdict(int)
    stop = threading.Event()
    for letter in letters:
        name = dict(letter.headers).get("webhook-endpoint", b"").decode()
        if (only is not None and name != only) or name not in workers:
            outcomes["skipped"] += 1
            continue
        original = [(k, v) for k, v in letter.headers if not k.startswith("webhook-")]
        resent = letter._replace(headers=original)
        outcomes[workers[name].deliver_one(resent, stop)] += 1
    for worker in workers.values():
        worker.close()
    return dict(outcomes)
