"""The relay: publishes the event store's lead and campaign events to ``lead.events``.

It reads the notification log from its own position, sends a batch, waits until the broker has
acknowledged all of it, and only then records the batch's last notification id: every event
reaches the topic at least once, and a crash only repeats the unacknowledged batch.

Positions are tracking records in the event store, which only accept increasing numbers. To
start over the relay starts a new *epoch*: the record ``<relay name>:<topic>:epoch`` holds the
epoch number and ``<relay name>:<topic>#<epoch>`` the position within it, which begins at zero.
An epoch publishes to one life of the topic: ``<relay name>:<topic>@<topic id>`` names the epoch
that first published to the topic with that id (Kafka gives a topic a new id each time it is
created), and ``<relay name>:<topic>#<epoch>:topic`` says the epoch was tied to a topic id. A new
epoch begins on ``from_start``, when the topic's id is not the one the epoch published to (the
topic was recreated: the bundled broker keeps nothing across restarts), or when the topic is
empty while we have published to it (a broker that gives no topic ids).

Transient failures of the broker or of the event store are retried with backoff, from the
last acknowledged position: nothing is skipped, and at most the unacknowledged batch repeats.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from uuid import UUID

import structlog
from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    Tracking,
)
from kafka import KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from consumers.admin import create_topics
from consumers.kafka import consumer, producer, topic_id
from consumers.worker import transient, will_retry
from lifecycle.adapters.logs import describe
from lifecycle.adapters.metrics import BATCH_SECONDS, count, fault
from lifecycle.contracts.lead_events import PUBLISHED_TOPICS, to_lead_event
from lifecycle.errors import TransientError
from lifecycle.ledger.engine import LeadLifecycle
from lifecycle.settings import Settings

log = structlog.get_logger()

DEFAULT_PARTITIONS = 6
IDLE_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0
# publish_pending gives up after this many failed attempts in a row; run() never does.
MAX_ATTEMPTS = 6
# A lost broker must surface as a failed send (and a retry) within seconds, not minutes; and
# the topic must not be auto-created on a new broker: the relay creates it and starts an epoch.
BOOTSTRAP_TIMEOUT_MS = 5_000
PRODUCER_OPTIONS = {
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "max_block_ms": 10_000,
    "request_timeout_ms": 5_000,
    "delivery_timeout_ms": 10_000,
    "allow_auto_create_topics": False,
}
# Longer than the delivery timeout, so that flushing ends with every send failed or acknowledged.
FLUSH_TIMEOUT_SECONDS = 15.0
# A producer that failed is dropped: what it still holds is sent again by the next session.
ABANDON_TIMEOUT_SECONDS = 1.0


class TopicRecreatedError(TransientError):
    """The topic now has another id than the one this session published to."""


class Relay:
    """Publishes every lead and campaign event in the store to ``lead.events``, at least once."""

    name = "relay"

    def __init__(
        self, *, engine: LeadLifecycle, settings: Settings, partitions: int = DEFAULT_PARTITIONS
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.topic = settings.lead_events_topic
        self.partitions = partitions
        self._epoch_name = f"{settings.relay_name}:{self.topic}:epoch"

    def run(self, stop: threading.Event, *, from_start: bool = False) -> None:
        """Publish new events as they are recorded until ``stop`` is set."""
        self._loop(stop, from_start=from_start, until_caught_up=False)

    def publish_pending(self, *, from_start: bool = False) -> int:
        """Publish everything in the store not yet published; how many events were sent."""
        return self._loop(threading.Event(), from_start=from_start, until_caught_up=True)

    def position(self) -> int:
        """The last notification id published and acknowledged in the current epoch."""
        return self.engine.position(self._position_name(self._epoch())) or 0

    def caught_up(self) -> bool:
        """Whether every event to publish in the store has been published (and acknowledged)."""
        position = self.position()
        pending = self.engine.recorder.select_notifications(
            position or None, 1, topics=PUBLISHED_TOPICS, inclusive_of_start=not position
        )
        return not pending

    def _loop(self, stop: threading.Event, *, from_start: bool, until_caught_up: bool) -> int:
        published = failures = 0
        session: _Session | None = None
        try:
            while not stop.is_set():
                try:
                    if session is None:
                        session = self._open(from_start=from_start)
                        from_start = False  # the new epoch is recorded: a retry keeps it
                    selected, sent = session.publish_batch()
                except Exception as error:
                    if not transient(error):  # (the broker or the event store briefly away)
                        raise
                    failures += 1
                    if until_caught_up and failures >= MAX_ATTEMPTS:
                        raise
                    delay = min(0.1 * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
                    will_retry(self.name, error, failures, delay)
                    if session is not None:
                        session.close(timeout=ABANDON_TIMEOUT_SECONDS)
                        session = None
                    stop.wait(delay)
                    continue
                failures = 0
                published += sent
                if selected < self.settings.batch_size:
                    if until_caught_up:
                        break
                    stop.wait(IDLE_SECONDS)
        finally:
            if session is not None:
                session.close()
        return published

    def _open(self, *, from_start: bool) -> _Session:
        """Make sure the topic exists, start a new epoch if needed, and connect a producer."""
        epoch = self._epoch()
        position = self.engine.position(self._position_name(epoch)) or 0
        current_id, empty = self._prepare_topic()
        marked = None if current_id is None else self.engine.position(self._id_name(current_id))
        reason = None
        if from_start:
            reason = "from_start"
        elif position and current_id is not None and marked is None and self._tied(epoch):
            reason = "topic_recreated"
        elif position and empty:
            reason = "topic_empty"
        if reason is not None:
            epoch = self._start_epoch(epoch, reason=reason, previous_position=position)
            position = self.engine.position(self._position_name(epoch)) or 0
        if current_id is not None and (marked != epoch or not self._tied(epoch)):
            self._tie(epoch, current_id)
        return _Session(self, self._position_name(epoch), position, current_id)

    def _start_epoch(self, epoch: int, *, reason: str, previous_position: int) -> int:
        if reason == "topic_recreated":
            fault("relay", "topic_recreated")
        log.warning(
            "relay_epoch_started",
            topic=self.topic,
            epoch=epoch + 1,
            reason=reason,
            previous_position=previous_position,
        )
        try:
            self.engine.process_recorder.insert_tracking(Tracking(self._epoch_name, epoch + 1))
        except IntegrityError:
            return self._epoch()  # another relay started this epoch: join it
        return epoch + 1

    def _epoch(self) -> int:
        return self.engine.position(self._epoch_name) or 0

    def _position_name(self, epoch: int) -> str:
        return f"{self.settings.relay_name}:{self.topic}#{epoch}"

    def _id_name(self, current_id: UUID) -> str:
        return f"{self.settings.relay_name}:{self.topic}@{current_id}"

    def _tied(self, epoch: int) -> bool:
        """Whether the epoch published to a topic whose id it recorded."""
        return self.engine.position(f"{self._position_name(epoch)}:topic") is not None

    def _tie(self, epoch: int, current_id: UUID) -> None:
        """Record that the epoch publishes to the topic with this id."""
        # (The epoch first: one tied without its id recorded yet is tied again next time.)
        for name, number in (
            (f"{self._position_name(epoch)}:topic", 1),
            (self._id_name(current_id), epoch),
        ):
            # (IntegrityError: another relay recorded it, or a later epoch, already.)
            with contextlib.suppress(IntegrityError):
                self.engine.process_recorder.insert_tracking(Tracking(name, number))

    def _prepare_topic(self) -> tuple[UUID | None, bool]:
        """Create the topic if it is missing: its id, and whether it is empty (never written)."""
        client = consumer(self.settings, group_id=None, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
        try:
            if self.topic not in client.topics():
                create_topics(
                    self.settings.kafka_bootstrap, [self.topic], partitions=self.partitions
                )
            ids = client.partitions_for_topic(self.topic)
            partitions = [TopicPartition(self.topic, p) for p in sorted(ids)]
            ends = client.end_offsets(partitions, timeout_ms=10_000) if partitions else {}
            return topic_id(client, self.topic), not any(ends.values())
        finally:
            client.close()


class _Session:
    """One producer connection, publishing batches from a position in one epoch."""

    def __init__(
        self, relay: Relay, position_name: str, position: int, topic_id: UUID | None
    ) -> None:
        self.relay = relay
        self.position_name = position_name
        self.position = position
        self.topic_id = topic_id
        self.producer: KafkaProducer = producer(relay.settings, **PRODUCER_OPTIONS)

    def publish_batch(self) -> tuple[int, int]:
        """Send the next batch and record its position once acknowledged: (selected, sent)."""
        relay = self.relay
        notifications = relay.engine.recorder.select_notifications(
            self.position or None,
            relay.settings.batch_size,
            topics=PUBLISHED_TOPICS,
            inclusive_of_start=not self.position,
        )
        if not notifications:
            return 0, 0
        heard = topic_id(self.producer, relay.topic)
        if self.topic_id is not None and heard is not None and heard != self.topic_id:
            # Recreated since the session began: the next session decides on a new epoch.
            raise TopicRecreatedError(f"{relay.topic} has a new topic id")
        with BATCH_SECONDS.labels(worker="relay").time():
            sent = self._send(notifications)
            last = notifications[-1].id
            try:
                relay.engine.process_recorder.insert_tracking(Tracking(self.position_name, last))
            except IntegrityError:
                # Another relay with the same name got there first: both published the batch
                # (consumers drop repeats by ce_id); carry on from wherever it is now.
                last = max(last, relay.engine.position(self.position_name) or 0)
                log.info("relay_position_taken_by_another_relay", position=last)
            self.position = last
        count(relay.topic, "published", sent)
        log.info("relay_batch_published", topic=relay.topic, count=sent, position=last)
        return len(notifications), sent

    def _send(self, notifications: Sequence[Notification]) -> int:
        relay = self.relay
        futures = []
        for notification in notifications:
            outgoing = to_lead_event(
                relay.engine.public_mapper.to_domain_event(notification),
                published_properties=relay.settings.published_properties,
                campaign_key=relay.engine.campaign_key,
            )
            if outgoing is not None:
                futures.append(
                    self.producer.send(
                        relay.topic, outgoing.value, key=outgoing.key, headers=outgoing.headers
                    )
                )
        self.producer.flush(timeout=FLUSH_TIMEOUT_SECONDS)
        for future in futures:
            if not future.succeeded():
                raise future.exception or KafkaTimeoutError("a message was not acknowledged")
        return len(futures)

    def close(self, *, timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        """Close the producer, once what is in flight was delivered or expired (or ``timeout``)."""
        try:
            self.producer.close(timeout=timeout)
        except KafkaError as error:
            log.warning("relay_producer_not_closed", error=describe(error))
