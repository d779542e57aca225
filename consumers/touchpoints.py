"""Ingest: ``lead.touchpoints`` into the event store, exactly once, per partition batch.

Each partition batch becomes one database transaction holding every aggregate it changed and
the partition's tracking record (its position: the batch's last offset). The database, not
Kafka, knows where we are: a newly assigned partition is *held* (what is fetched for it is
dropped) until its position has been read from the store, then sought to the next offset.
Kafka's committed offsets follow the database only so that lag tools see them.

Positions belong to one life of the topic (``lifecycle.positions``): when the broker reports
another topic id than the one the positions were taken on, the topic was recreated, and its
new life is read from its start (receipts make repeats harmless).

Bad input goes to the DLQ (acknowledged before the offset is tracked). Transient failures
(the database or the broker unreachable, other writers winning) hold the partition and retry
the same batch with bounded backoff, so nothing is skipped; the loop itself never exits on them.

Holding is not ``KafkaConsumer.pause()``: in kafka-python 3.0.12 a partition paused while
part of a fetch response for it is still buffered never fetches again once resumed, as long as
other partitions flow (the parked records are restored only when no other partition's records
are in hand). A held partition's records are dropped and the consumer sought back to where the
partition must go on, so fetching continues at the right place whatever the fetcher buffered.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog
from eventsourcing.persistence import Tracking
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CorruptRecordError, KafkaError, UnsupportedCodecError
from kafka.structs import OffsetAndMetadata

from consumers import kafka
from consumers.dead_letters import DeadLetterProducer
from consumers.worker import backoff, failed_part, transient, will_retry
from lifecycle.adapters.logs import describe
from lifecycle.adapters.metrics import BATCH_SECONDS, count, fault
from lifecycle.contracts.inbound import InboundEvent, decode_message
from lifecycle.errors import ContractError, TransientError
from lifecycle.ledger.engine import LeadLifecycle, RecordResult
from lifecycle.ledger.positions import Incarnation, ingest_positions
from lifecycle.settings import Settings

log = structlog.get_logger()

# Record batches the client cannot read: a compression codec whose library is missing, a
# corrupt batch. Retrying cannot help, so they are not transient.
UNDECODABLE = (UnsupportedCodecError, CorruptRecordError)
POLL_MS = 200
POLL_SECONDS = POLL_MS / 1000


@dataclass
class _Batch:
    """One partition batch on its way into the store (kept as it is when a retry is due)."""

    messages: Sequence[ConsumerRecord]
    decoded: list[tuple[ConsumerRecord, InboundEvent]] = field(default_factory=list)
    refused: dict[int, tuple[ConsumerRecord, Exception]] = field(default_factory=dict)
    """Refused by the contract or the application, by offset."""
    sent: set[int] = field(default_factory=set)
    """Offsets already on the dead-letter topic: a retry sends none of them again."""
    decoded_once: bool = False
    attempts: int = 0
    retry_at: float = 0.0

    def decode(self) -> None:
        """Split the messages into events and refusals (once)."""
        if self.decoded_once:
            return
        for message in self.messages:
            try:
                self.decoded.append((message, decode_message(message.value, message.headers)))
            except Exception as refusal:  # noqa: BLE001 (any message we cannot read is refused)
                self.refused[message.offset] = (message, refusal)
        self.decoded_once = True

    def unsent(self) -> list[tuple[ConsumerRecord, Exception]]:
        """The refused messages not yet on the dead-letter topic."""
        return [refusal for offset, refusal in self.refused.items() if offset not in self.sent]


@dataclass
class _Partition:
    """What ingest knows of one partition assigned to it."""

    position: int | None = None
    """The last offset recorded in the current incarnation (None: nothing yet)."""
    located: bool = False
    """Whether the position was read from the store and the consumer sought past it."""
    pending: _Batch | None = None
    """A batch that failed and waits for its retry (the partition is held meanwhile)."""
    undecodable: bool = False
    """A record batch this process cannot read stops the partition (until a restart)."""
    attempts: int = 0
    retry_at: float = 0.0

    def failed(self, now: float) -> float:
        """Count a failed attempt; the delay before the next one."""
        self.attempts += 1
        delay = backoff(self.attempts)
        self.retry_at = now + delay
        return delay


class TouchpointIngest:
    """The ingest worker: one consumer in the ingest group."""

    name = "ingest"

    def __init__(self, *, engine: LeadLifecycle, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.topic = settings.touchpoints_topic
        self.positions = ingest_positions(engine.process_recorder, settings)
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._orphans: list[_Batch] = []
        """Batches that failed, of partitions since taken away (see _orphan)."""
        self._undecodable: set[TopicPartition] = set()
        """Partitions stopped by a record batch this process cannot read (see UNDECODABLE)."""
        self._incarnation: Incarnation | None = None
        self._dead_letters = DeadLetterProducer(settings)

    def tracking_name(self, partition: int) -> str:
        """Where the event store keeps this partition's position (in the current incarnation)."""
        number = self._incarnation.number if self._incarnation else self.positions.latest()
        return self.positions.name(number, partition)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        consumer = kafka.consumer(self.settings, group_id=self.settings.ingest_group)
        consumer.subscribe(
            [self.topic],
            listener=kafka.PartitionListener(
                assigned=self._assigned,
                revoked=self._revoked,
            ),
        )
        log.info("ingest_started", topic=self.topic, group=self.settings.ingest_group)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self._step(consumer, stop)
                except UNDECODABLE as error:
                    # Not the broker's fault, nor the store's: a record batch this client cannot
                    # read (a codec it lacks, a corrupt batch). Its partition is held; the
                    # others go on.
                    self._hold_undecodable(consumer, error)
                except Exception as error:
                    if not transient(error):
                        raise
                    # The broker is away (restarting, unreachable): wait and go on; the
                    # partitions' positions are in the store, nothing is lost meanwhile.
                    failures += 1
                    delay = will_retry(self.name, error, failures, backoff(failures))
                    stop.wait(delay)
                else:
                    failures = 0
        finally:
            self._retry_orphans(at_stop=True)
            consumer.close(autocommit=False)
            self._dead_letters.close()
            log.info("ingest_stopped", topic=self.topic)

    def _step(self, consumer: KafkaConsumer, stop: threading.Event) -> None:
        self._check_incarnation(consumer)
        self._locate(consumer)
        self._retry_pending(consumer)
        self._retry_orphans()
        states = self._partitions.values()
        if states and all(not s.located or s.pending or s.undecodable for s in states):
            # Every partition waits (for the store, or for a retry): what a poll would fetch
            # would be dropped. (Heartbeats go on in kafka-python's own thread.)
            stop.wait(POLL_SECONDS)
            return
        batches = consumer.poll(timeout_ms=POLL_MS, max_records=self.settings.batch_size)
        for partition, messages in batches.items():
            self._handle(consumer, partition, messages)

    # Assignment: nothing here may fail, so the store is read later, in _locate.

    def _assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """New partitions are held until their positions are read from the store."""
        # Which life of the topic this is, is asked again (a rebalance follows a broker restart),
        # and every partition is located again in it.
        self._incarnation = None
        for partition in {*self._partitions, *partitions}:
            self._orphan(self._partitions.get(partition))
            self._partitions[partition] = _Partition(undecodable=partition in self._undecodable)
        log.info("partitions_assigned", partitions=sorted(p.partition for p in partitions))

    def _revoked(self, partitions: Sequence[TopicPartition]) -> None:
        """Forget revoked partitions (a batch waiting for its retry is still recorded)."""
        for partition in partitions:
            self._orphan(self._partitions.pop(partition, None))
        log.info("partitions_revoked", partitions=sorted(p.partition for p in partitions))

    def _check_incarnation(self, consumer: KafkaConsumer) -> None:
        """If the broker now reports another topic id, every partition is located again."""
        if self._incarnation is None or self._incarnation.topic_id is None:
            return
        current = kafka.topic_id(consumer, self.topic)
        if current is None or current == self._incarnation.topic_id:
            return
        log.warning(
            "topic_id_changed",
            topic=self.topic,
            previous_topic_id=str(self._incarnation.topic_id),
            topic_id=str(current),
        )
        self._incarnation = None
        for partition, state in self._partitions.items():
            self._orphan(state)
            self._partitions[partition] = _Partition(retry_at=state.retry_at)

    def _orphan(self, state: _Partition | None) -> None:
        """Keep a failed batch whose partition is taken away, to record it all the same.

        The new owner reads the partition again from the tracked position, but the broker may
        no longer have these messages (it restarted without its topics): so they are recorded
        anyway, without moving any position (receipts make the repeats harmless).
        """
        if state is not None and state.pending is not None:
            state.pending.retry_at = state.retry_at
            self._orphans.append(state.pending)
            state.pending = None

    def _retry_orphans(self, *, at_stop: bool = False) -> None:
        now = time.monotonic()
        for batch in list(self._orphans):
            if batch.retry_at > now and not at_stop:
                continue
            try:
                result = self._record(batch, tracking=None)
            except Exception as error:
                if not transient(error):
                    raise
                batch.attempts += 1
                batch.retry_at = now + backoff(batch.attempts)
                fault("ingest", failed_part(error))
                log.warning(
                    "orphan_batch_failed_will_retry",
                    partition=batch.messages[0].partition,
                    first_offset=batch.messages[0].offset,
                    error=describe(error),
                )
                continue
            self._orphans.remove(batch)
            self._counted(batch, result, orphan=True)
        if at_stop and self._orphans:
            log.error("orphan_batches_not_recorded", batches=len(self._orphans))

    def _locate(self, consumer: KafkaConsumer) -> None:
        """Seek the partitions that wait for it past their positions, and let them read."""
        now = time.monotonic()
        due = [p for p, s in self._partitions.items() if not s.located and s.retry_at <= now]
        if not due:
            return
        try:
            incarnation = self._incarnation or self._resolve_incarnation(consumer)
            positions = {p: self.positions.position(incarnation.number, p.partition) for p in due}
        except Exception as error:
            if not transient(error):
                raise
            delay = max(self._partitions[p].failed(now) for p in due)
            fault("ingest", failed_part(error))
            log.warning("positions_unavailable_will_retry", error=describe(error), retry_in=delay)
            return
        for partition, position in positions.items():
            state = self._partitions[partition]
            state.position, state.located, state.attempts = position, True, 0
            consumer.seek(partition, 0 if position is None else position + 1)
        log.info(
            "partitions_located",
            incarnation=incarnation.number,
            positions={p.partition: v for p, v in sorted(positions.items())},
        )

    def _hold_undecodable(self, consumer: KafkaConsumer, error: Exception) -> None:
        """Find the partitions whose next record batch cannot be read, and stop them.

        kafka-python does not say which partition the batch came from: each assigned one is
        read again, at the consumer's position, by a consumer of its own. The ones that fail
        are paused for good (for this process: after a restart, with the codec installed, they
        go on from their tracked positions; nothing was recorded past them).
        """
        found = []
        for partition, state in self._partitions.items():
            if state.undecodable:
                continue
            offset = consumer.position(partition)
            if kafka.readable(self.settings, partition, offset):
                continue
            state.undecodable = True
            self._undecodable.add(partition)
            # (Paused, never resumed: kafka-python's pause bug only bites on a resume.)
            consumer.pause(partition)
            found.append(partition.partition)
            fault("ingest", "undecodable_batch")
            log.error(
                "partition_held_undecodable",
                partition=partition.partition,
                offset=offset,
                error=describe(error),
            )
        if not found:
            # Gone by the time it was read again: a batch that was not there to stay.
            fault("ingest", "undecodable_batch")
            log.warning("undecodable_batch_not_found_again", error=describe(error))

    def _resolve_incarnation(self, consumer: KafkaConsumer) -> Incarnation:
        # Asked of the broker now: after a restart the cached metadata may be of the old topic.
        topic_id = kafka.refresh_topic_id(consumer, self.topic)
        incarnation = self.positions.incarnation(topic_id)
        if incarnation.recreated:
            # The loudest thing ingest says: the topic's offsets began again from zero. The
            # broker may be a new one too: the dead-letter producer starts afresh.
            self._dead_letters.close()
            fault("ingest", "topic_recreated")
            log.error(
                "topic_recreated_reading_from_start",
                topic=self.topic,
                topic_id=str(topic_id),
                incarnation=incarnation.number,
                previous_incarnation=incarnation.previous,
            )
        elif topic_id is None:
            log.warning("topic_id_unknown", topic=self.topic)
        self._incarnation = incarnation
        return incarnation

    # Batches

    def _handle(
        self,
        consumer: KafkaConsumer,
        partition: TopicPartition,
        messages: Sequence[ConsumerRecord],
    ) -> None:
        state = self._partitions.get(partition)
        if state is None or not state.located or state.undecodable:
            return  # fetched before the position was known: the partition is sought later
        if state.pending is not None:
            # Held for a retry: fetching goes on right after the batch kept for it.
            consumer.seek(partition, state.pending.messages[-1].offset + 1)
            return
        if state.position is not None and messages[0].offset <= state.position:
            # The consumer went back behind what is recorded: the log was truncated or the
            # topic recreated. Read metadata again to see which (then _check_incarnation
            # starts the new life); meanwhile, these messages are recorded again, since
            # receipts make repeats harmless.
            fault("ingest", "partition_rewound")
            log.warning(
                "partition_rewound",
                partition=partition.partition,
                position=state.position,
                first_offset=messages[0].offset,
            )
            with contextlib.suppress(KafkaError, TransientError):  # (asked again later anyway)
                kafka.refresh_topic_id(consumer, self.topic)
        self._attempt(consumer, partition, state, _Batch(messages))

    def _retry_pending(self, consumer: KafkaConsumer) -> None:
        now = time.monotonic()
        for partition, state in list(self._partitions.items()):
            if state.pending is not None and state.retry_at <= now:
                self._attempt(consumer, partition, state, state.pending)

    def _attempt(
        self,
        consumer: KafkaConsumer,
        partition: TopicPartition,
        state: _Partition,
        batch: _Batch,
    ) -> None:
        try:
            self._process(consumer, partition, state, batch)
        except Exception as error:
            if not transient(error):
                raise
            state.pending = batch
            delay = state.failed(time.monotonic())
            fault("ingest", failed_part(error))
            log.warning(
                "batch_failed_will_retry",
                partition=partition.partition,
                first_offset=batch.messages[0].offset,
                attempts=state.attempts,
                retry_in=delay,
                error=describe(error),
            )
            return
        state.pending, state.attempts = None, 0

    def _process(
        self,
        consumer: KafkaConsumer,
        partition: TopicPartition,
        state: _Partition,
        batch: _Batch,
    ) -> None:
        first, last = batch.messages[0].offset, batch.messages[-1].offset
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            topic=self.topic, partition=partition.partition, offset=first, last_offset=last
        )
        # A batch behind the position (a rewound partition) is recorded without moving it.
        advances = state.position is None or last > state.position
        tracking = Tracking(self.tracking_name(partition.partition), last) if advances else None
        with BATCH_SECONDS.labels(worker=self.name).time():
            result = self._record(batch, tracking)
        if advances:
            state.position = last
        _commit(consumer, partition, last)
        self._counted(batch, result)

    def _record(self, batch: _Batch, tracking: Tracking | None) -> RecordResult:
        """Record the batch with its position in one transaction (else each event alone).

        What the contract or the application refuses goes to the DLQ first.
        """
        batch.decode()
        self._dead_letter(batch)  # acknowledged before the position is tracked
        try:
            return self.engine.record([event for _, event in batch.decoded], tracking=tracking)
        except Exception as error:
            if transient(error):
                raise
            log.warning("batch_refused_recording_one_by_one", error=describe(error))
        total = RecordResult()
        for message, event in batch.decoded:
            try:
                result = self.engine.record([event])
            except Exception as error:
                if transient(error):
                    raise
                batch.refused.setdefault(message.offset, (message, error))
                continue
            total.recorded += result.recorded
            total.duplicates += result.duplicates
            total.suppressed += result.suppressed
        self._dead_letter(batch)
        if tracking is not None:
            self.engine.record([], tracking=tracking)
        return total

    def _counted(self, batch: _Batch, result: RecordResult, *, orphan: bool = False) -> None:
        count(self.topic, "consumed", len(batch.messages))
        count(self.topic, "recorded", result.recorded)
        count(self.topic, "duplicate", result.duplicates)
        count(self.topic, "suppressed", result.suppressed)
        count(self.topic, "dead_lettered", len(batch.refused))
        log.info(
            "batch_recorded",
            messages=len(batch.messages),
            recorded=result.recorded,
            duplicates=result.duplicates,
            suppressed=result.suppressed,
            dead_lettered=len(batch.refused),
            **({"orphan": True} if orphan else {}),
        )

    def _dead_letter(self, batch: _Batch) -> None:
        """Send what the batch refused and has not sent yet (each message once)."""
        unsent = batch.unsent()
        if not unsent:
            return
        self._dead_letters.send(unsent)
        for message, reason in unsent:
            batch.sent.add(message.offset)
            log.warning(
                "dead_lettered",
                offset=message.offset,
                field=reason.field if isinstance(reason, ContractError) else None,
                reason=reason.reason if isinstance(reason, ContractError) else describe(reason),
            )


def _commit(consumer: KafkaConsumer, partition: TopicPartition, last: int) -> None:
    """Tell Kafka too (for lag tools); the store has the position already, so a failure is fine."""
    try:
        consumer.commit_async({partition: OffsetAndMetadata(last + 1, "", -1)})
    except KafkaError as error:
        log.info("offset_commit_skipped", error=describe(error))
