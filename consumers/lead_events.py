"""The projection worker: ``lead.events`` into the view tables, exactly once.

Each poll's messages (of every partition) update the views and the partitions' offsets in one
transaction of the views database. On assignment the consumer seeks to the offsets the active
slot recorded; when a replay swaps the slots, the worker notices at its next batch and seeks to
the new slot's offsets (from the start of the topic if a replay from the store built it:
repeats are harmless, every event is applied idempotently).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import msgspec
import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata

from consumers import kafka
from lifecycle.lead_events import LeadEvent, decode_lead_event
from lifecycle.metrics import BATCH_SECONDS, count
from lifecycle.projections.leads import LeadsProjection
from lifecycle.projections.replay import Progress, spare_slot
from lifecycle.projections.store import Slot, Transaction, ViewStore
from lifecycle.rules import Rulebook
from lifecycle.settings import Settings

log = structlog.get_logger()

MAX_RECORDS = 2_000
# Leads remembered between batches (their folds: about 2 kB each).
REMEMBERED_LEADS = 50_000


class ViewsWorker:
    """Keeps the views up to date with ``lead.events``."""

    name = "project"

    def __init__(self, *, store: ViewStore, rules: Rulebook, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.topic = settings.lead_events_topic
        self.projection = LeadsProjection(rules, remember=REMEMBERED_LEADS)
        self._slot: Slot | None = None
        self._assigned: list[TopicPartition] = []

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        self.store.setup()
        consumer = kafka.consumer(self.settings, group_id=self.settings.views_group)
        consumer.subscribe(
            [self.topic],
            listener=kafka.PartitionListener(
                assigned=lambda partitions: self._on_assigned(consumer, partitions),
                revoked=lambda _: self.projection.forget(),
            ),
        )
        log.info("views_started", topic=self.topic, group=self.settings.views_group)
        try:
            while not stop.is_set():
                batches = consumer.poll(timeout_ms=200, max_records=self.settings.batch_size)
                if batches:
                    self._handle(consumer, batches)
        finally:
            consumer.close(autocommit=False)
            log.info("views_stopped", topic=self.topic)

    def _on_assigned(self, consumer: KafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        self._assigned = list(partitions)
        self.projection.forget()
        with self.store.transaction() as tx:
            self._slot = self.store.active_slot(tx)
            self._seek(consumer, tx, self._slot, partitions)
        log.info("partitions_assigned", partitions=sorted(p.partition for p in partitions))

    def _seek(
        self,
        consumer: KafkaConsumer,
        tx: Transaction,
        slot: Slot,
        partitions: Sequence[TopicPartition],
    ) -> None:
        for partition in partitions:
            position = self.store.offset(tx, slot, self.topic, partition.partition)
            if position is None:
                consumer.seek_to_beginning(partition)
            else:
                consumer.seek(partition, int(position) + 1)

    def _handle(
        self,
        consumer: KafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        """Apply one poll's messages in one transaction, with every partition's new offset."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            topic=self.topic,
            offsets={p.partition: [m[0].offset, m[-1].offset] for p, m in batches.items()},
        )
        events: list[LeadEvent] = []
        for messages in batches.values():
            for message in messages:
                try:
                    events.append(decode_lead_event(message.value or b""))
                except msgspec.DecodeError:
                    # Our own topic: a message we cannot read is a bug to see, not input to keep.
                    log.exception("lead_event_unreadable", offset=message.offset)
        try:
            with BATCH_SECONDS.labels(worker=self.name).time(), self.store.transaction() as tx:
                slot = self.store.active_slot(tx)
                if slot != self._slot:
                    # A replay swapped the views: continue from where the new slot is.
                    self._slot = slot
                    self.projection.forget()
                    self._seek(consumer, tx, slot, self._assigned)
                    log.info("views_slot_changed", slot=slot)
                    return
                folded = self.projection.apply(tx, slot, events)
                for partition, messages in batches.items():
                    self.store.record_offset(
                        tx, slot, self.topic, partition.partition, messages[-1].offset
                    )
        except BaseException:
            self.projection.forget()  # its folds went on with what was rolled back
            raise
        consumer.commit_async(
            {p: OffsetAndMetadata(m[-1].offset + 1, "", -1) for p, m in batches.items()}
        )
        consumed = sum(len(m) for m in batches.values())
        count(self.topic, "consumed", consumed)
        count(self.topic, "projected", len(events))
        log.info("views_batch_applied", messages=consumed, leads_folded=folded)


def fill_from_kafka(
    store: ViewStore,
    rules: Rulebook,
    settings: Settings,
    *,
    progress: Progress | None = None,
    quiet_seconds: float = 2.0,
) -> Slot:
    """Fold ``lead.events`` from its beginning into the spare slot, with its offsets; that slot."""
    slot = spare_slot(store)
    projection = LeadsProjection(rules)
    topic = settings.lead_events_topic
    consumer = kafka.consumer(settings, group_id=None)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions) if partitions else {}
        total, done = sum(ends.values()), 0
        # The bundled broker under-reports end offsets: read until the topic stays quiet.
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_seconds or any(
            consumer.position(tp) < ends[tp] for tp in partitions
        ):
            batches = consumer.poll(timeout_ms=200, max_records=MAX_RECORDS)
            if batches:
                quiet_since = time.monotonic()
            for partition, messages in batches.items():
                events: list[LeadEvent] = []
                for message in messages:
                    try:
                        events.append(decode_lead_event(message.value or b""))
                    except msgspec.DecodeError:
                        continue  # the live worker logs these; a replay skips them too
                with store.transaction() as tx:
                    projection.apply(tx, slot, events)
                    store.record_offset(tx, slot, topic, partition.partition, messages[-1].offset)
                done += len(messages)
                if progress is not None:
                    progress(done, max(total, done))
    finally:
        consumer.close(autocommit=False)
    return slot
