"""Ingest: ``lead.touchpoints`` into the event store, exactly once, per partition batch.

Each partition batch becomes one database transaction holding every aggregate it changed and
the partition's tracking record (``group:topic:partition`` = the batch's last offset). On
assignment the consumer seeks to the tracked offset + 1: the database, not Kafka, knows where
we are. Kafka's committed offsets follow the database only so that lag tools see them.
Bad input goes to the DLQ (acknowledged before the offset is tracked); transient failures
pause the partition and retry the same batch with bounded backoff, so nothing is skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError, Tracking
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import kafka
from consumers.dead_letters import send_dead_letters
from lifecycle.application import ConcurrencyError, LeadLifecycle, RecordResult
from lifecycle.contracts import InboundEvent, decode_message
from lifecycle.metrics import BATCH_SECONDS, count
from lifecycle.settings import Settings

log = structlog.get_logger()

# Failures that go away by themselves: the database or the broker is briefly unreachable.
# (ConcurrencyError: other writers kept winning; a later try settles it.)
TRANSIENT = (OperationalError, InterfaceError, KafkaError, ConcurrencyError)
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class _Batch:
    """One partition batch on its way into the store (kept as it is when a retry is due)."""

    messages: Sequence[ConsumerRecord]
    decoded: list[tuple[ConsumerRecord, InboundEvent]] = field(default_factory=list)
    refused: list[tuple[ConsumerRecord, Exception]] = field(default_factory=list)
    dead_lettered: bool = False
    attempts: int = 0
    retry_at: float = 0.0

    def decode(self) -> None:
        """Split the messages into events and refusals (once)."""
        if self.decoded or self.refused:
            return
        for message in self.messages:
            try:
                self.decoded.append((message, decode_message(message.value, message.headers)))
            except Exception as refusal:  # noqa: BLE001 (any message we cannot read is refused)
                self.refused.append((message, refusal))


class TouchpointIngest:
    """The ingest worker: one consumer in the ingest group."""

    name = "ingest"

    def __init__(self, *, app: LeadLifecycle, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.topic = settings.touchpoints_topic
        self._positions: dict[TopicPartition, int | None] = {}
        self._pending: dict[TopicPartition, _Batch] = {}

    def tracking_name(self, partition: int) -> str:
        """Where the event store keeps this partition's position."""
        return f"{self.settings.ingest_group}:{self.topic}:{partition}"

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        consumer = kafka.consumer(self.settings, group_id=self.settings.ingest_group)
        producer = kafka.producer(self.settings)
        consumer.subscribe(
            [self.topic],
            listener=kafka.PartitionListener(
                assigned=lambda partitions: self.assigned(consumer, partitions),
                revoked=self.revoked,
            ),
        )
        log.info("ingest_started", topic=self.topic, group=self.settings.ingest_group)
        try:
            while not stop.is_set():
                self._retry_pending(consumer, producer)
                batches = consumer.poll(timeout_ms=200, max_records=self.settings.batch_size)
                for partition, messages in batches.items():
                    self._handle(consumer, producer, partition, messages)
        finally:
            consumer.close(autocommit=False)
            producer.close(timeout=10)
            log.info("ingest_stopped", topic=self.topic)

    def assigned(self, consumer: KafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        """Start each new partition right after the position the event store tracked."""
        # A partition paused for a retry and assigned to us again keeps its pause flag, but
        # its retry was dropped on revocation: it must read again.
        consumer.resume(*partitions)
        for partition in partitions:
            position = self.app.position(self.tracking_name(partition.partition))
            self._positions[partition] = position
            if position is None:
                consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, position + 1)
        log.info("partitions_assigned", partitions=sorted(p.partition for p in partitions))

    def revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget revoked partitions; a failed batch waiting for retry is abandoned (unrecorded)."""
        for partition in partitions:
            self._positions.pop(partition, None)
            self._pending.pop(partition, None)
        log.info("partitions_revoked", partitions=sorted(p.partition for p in partitions))

    def _handle(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        partition: TopicPartition,
        messages: Sequence[ConsumerRecord],
    ) -> None:
        position = self._positions.get(partition)
        fresh = [m for m in messages if position is None or m.offset > position]
        count(self.topic, "duplicate", len(messages) - len(fresh))
        if not fresh:
            return
        batch = _Batch(fresh)
        try:
            self._process(consumer, producer, partition, batch)
        except TRANSIENT as error:
            consumer.pause(partition)
            batch.attempts, batch.retry_at = 1, time.monotonic() + _backoff(1)
            self._pending[partition] = batch
            log.warning("batch_failed_will_retry", partition=partition.partition, error=str(error))

    def _retry_pending(self, consumer: KafkaConsumer, producer: KafkaProducer) -> None:
        now = time.monotonic()
        for partition, pending in list(self._pending.items()):
            if pending.retry_at > now:
                continue
            try:
                self._process(consumer, producer, partition, pending)
            except TRANSIENT as error:
                pending.attempts += 1
                pending.retry_at = now + _backoff(pending.attempts)
                log.warning(
                    "batch_failed_will_retry",
                    partition=partition.partition,
                    attempts=pending.attempts,
                    error=str(error),
                )
            else:
                del self._pending[partition]
                consumer.resume(partition)

    def _process(
        self,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        partition: TopicPartition,
        batch: _Batch,
    ) -> None:
        first, last = batch.messages[0].offset, batch.messages[-1].offset
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            topic=self.topic, partition=partition.partition, offset=first, last_offset=last
        )
        tracking = Tracking(self.tracking_name(partition.partition), last)
        with BATCH_SECONDS.labels(worker=self.name).time():
            batch.decode()
            if batch.refused and not batch.dead_lettered:
                self._dead_letter(producer, batch.refused)
                batch.dead_lettered = True  # a retry must not send them twice
            events = [event for _, event in batch.decoded]
            try:
                result = self.app.record(events, tracking=tracking)
            except TRANSIENT:
                raise
            except Exception:
                log.exception("batch_refused_recording_one_by_one")
                result = self._record_one_by_one(producer, batch, tracking)
        self._positions[partition] = last
        consumer.commit_async({partition: OffsetAndMetadata(last + 1, "", -1)})
        count(self.topic, "consumed", len(batch.messages))
        count(self.topic, "recorded", result.recorded)
        count(self.topic, "duplicate", result.duplicates)
        count(self.topic, "dead_lettered", len(batch.refused))
        log.info(
            "batch_recorded",
            messages=len(batch.messages),
            recorded=result.recorded,
            duplicates=result.duplicates,
            dead_lettered=len(batch.refused),
        )

    def _record_one_by_one(
        self, producer: KafkaProducer, batch: _Batch, tracking: Tracking
    ) -> RecordResult:
        """Record each event alone; the ones the application refuses go to the DLQ."""
        total = RecordResult()
        refused: list[tuple[ConsumerRecord, Exception]] = []
        for message, event in batch.decoded:
            try:
                result = self.app.record([event])
            except TRANSIENT:
                raise
            except Exception as error:  # noqa: BLE001 (kept with its reason on the DLQ)
                refused.append((message, error))
                continue
            total.recorded += result.recorded
            total.duplicates += result.duplicates
        self._dead_letter(producer, refused)
        batch.refused.extend(refused)
        self.app.record([], tracking=tracking)
        return total

    def _dead_letter(
        self, producer: KafkaProducer, refused: Sequence[tuple[ConsumerRecord, Exception]]
    ) -> None:
        if not refused:
            return
        send_dead_letters(producer, self.settings.dead_letter_topic, refused)
        for message, reason in refused:
            log.warning("dead_lettered", offset=message.offset, reason=str(reason))


def _backoff(attempts: int) -> float:
    return min(0.5 * 2.0 ** (attempts - 1), MAX_BACKOFF_SECONDS)
