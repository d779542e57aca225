"""The changes publisher: the announced changes out of the views database to ``lead.lifecycle``.

The views worker writes each change to the outbox in the transaction of the rows it comes
from; this worker sends them in order, as binary-mode CloudEvents keyed by lead id, with an
idempotent producer (``acks=all``), and records how far it got only after the broker
acknowledged. Killed at any point, it sends again at most the batch that was not acknowledged,
with the same ``ce_id``s. A topic that was recreated (a broker that lost it) gets every change
again, from the first.
"""

from __future__ import annotations

import threading

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from consumers import kafka
from consumers.admin import create_topics
from consumers.worker import backoff, transient, will_retry
from lifecycle.adapters.metrics import BATCH_SECONDS, count
from lifecycle.contracts import changes as contract
from lifecycle.contracts.lead_events import Outgoing, rfc3339
from lifecycle.projections import outbox
from lifecycle.projections.store import ViewStore
from lifecycle.settings import Settings

log = structlog.get_logger()

IDLE_SECONDS = 0.2
DEFAULT_PARTITIONS = 6
FLUSH_TIMEOUT_SECONDS = 15.0
PRODUCER_OPTIONS = {
    "bootstrap_timeout_ms": 5_000,
    "max_block_ms": 10_000,
    "request_timeout_ms": 5_000,
    "delivery_timeout_ms": 10_000,
    "allow_auto_create_topics": False,
}


def message(change: outbox.Stored) -> Outgoing:
    """A change as a binary-mode CloudEvent, keyed by its lead."""
    return Outgoing(
        key=change.lead_id.encode(),
        value=change.data,
        ce_id=change.id,
        ce_type=f"{contract.TYPE_PREFIX}{change.type}",
        ce_time=rfc3339(change.at),
        ce_source=contract.SOURCE,
    )


class ChangesPublisher:
    """Sends the outbox to ``lead.lifecycle`` until stopped."""

    name = "changes"

    def __init__(
        self, *, store: ViewStore, settings: Settings, partitions: int = DEFAULT_PARTITIONS
    ) -> None:
        self.store = store
        self.settings = settings
        self.topic = settings.changes_topic
        self.partitions = partitions

    def run(self, stop: threading.Event) -> None:
        """Publish until ``stop`` is set."""
        log.info("changes_publisher_started", topic=self.topic)
        producer: KafkaProducer | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if producer is None:
                        producer = kafka.producer(self.settings, **PRODUCER_OPTIONS)
                    sent = self.publish_batch(producer)
                except Exception as error:
                    if not transient(error):
                        raise
                    failures += 1
                    stop.wait(will_retry(self.name, error, failures, backoff(failures)))
                    if producer is not None:
                        producer.close(timeout=1.0)  # what it holds is sent again
                        producer = None
                    continue
                failures = 0
                if not sent:
                    stop.wait(IDLE_SECONDS)
        finally:
            if producer is not None:
                producer.close(timeout=FLUSH_TIMEOUT_SECONDS)
            log.info("changes_publisher_stopped", topic=self.topic)

    def publish_batch(self, producer: KafkaProducer) -> int:
        """Send the next changes and record them as published once acknowledged; how many."""
        topic_id = self._topic_id(producer)
        with self.store.reading() as tx:
            seq, published_to = outbox.published(tx)
            if published_to is not None and topic_id is not None and published_to != topic_id:
                log.warning("changes_topic_recreated_publishing_again", topic=self.topic)
                seq = 0
            pending = outbox.after(tx, seq, self.settings.batch_size)
        if not pending:
            if published_to is None and topic_id is not None:
                with self.store.transaction() as tx:
                    outbox.record_published(tx, seq, topic_id)
            return 0
        with BATCH_SECONDS.labels(worker=self.name).time():
            futures = [
                producer.send(self.topic, m.value, key=m.key, headers=m.headers)
                for m in map(message, pending)
            ]
            producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
            for future in futures:
                if not future.succeeded():
                    raise future.exception or KafkaTimeoutError("a change was not acknowledged")
            with self.store.transaction() as tx:
                outbox.record_published(tx, pending[-1].seq, topic_id)
        count(self.topic, "published", len(pending))
        log.info("changes_published", count=len(pending), position=pending[-1].seq)
        return len(pending)

    def _topic_id(self, producer: KafkaProducer) -> str | None:
        """The topic's id, the topic created first if the broker has none."""
        found = kafka.topic_id(producer, self.topic)
        if found is None:
            create_topics(self.settings.kafka_bootstrap, [self.topic], partitions=self.partitions)
            producer.partitions_for(self.topic)  # fetches its metadata
            found = kafka.topic_id(producer, self.topic)
        return None if found is None else str(found)
