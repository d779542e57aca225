"""The views worker: ``lead.events`` into the view tables, exactly once.

Each poll's messages (of every partition) update the views and the partitions' offsets in one
transaction of the views database. The offsets in the active slot, not Kafka, say where the
worker stands: what is fetched for newly assigned partitions is dropped until their offsets
have been read, and after any failed transaction every partition is sought back to them. (Not
with ``KafkaConsumer.pause()``: see ``consumers.touchpoints`` for the kafka-python bug.) When
a replay swaps the slots, the worker notices at its next batch and seeks to the new slot's
offsets (from the start of the topic if a replay from the store built it: repeats are
harmless, every event is applied idempotently). Offsets are kept with the id of the topic's
life they were read from: if the topic was recreated (the relay then publishes everything
again), it is read from its start.

The database or the broker being away is waited out with backoff; a lead event the views
cannot apply (or read) is parked in ``lifecycle_parked_events`` and the others go on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import msgspec
import structlog
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers import kafka
from consumers.worker import backoff, transient, will_retry
from lifecycle.adapters.logs import describe
from lifecycle.adapters.metrics import BATCH_SECONDS, count, fault
from lifecycle.contracts.lead_events import LeadEvent, decode_lead_event
from lifecycle.projections.announcer import Announcement, Announcer, counted_changes
from lifecycle.projections.leads import FOLDS_PER_QUERY, Changes, LeadsProjection
from lifecycle.projections.replay import LogPage
from lifecycle.projections.sql import Slot, Transaction
from lifecycle.projections.store import ViewStore
from lifecycle.rules import Rulebook
from lifecycle.settings import Settings

log = structlog.get_logger()

MAX_RECORDS = 2_000
# Leads remembered between batches (their folds: about 2 kB each).
REMEMBERED_LEADS = 50_000
# Attribution and quality are worked out for the leads folded since the last time when the
# stream is idle, every tick, or once this many are due; a step credits at most CREDIT_STEP,
# between batches, so that no batch waits long behind it.
CREDIT_AFTER_LEADS = 10_000
CREDIT_STEP = 1_000

Batches = dict[TopicPartition, list[ConsumerRecord]]


def _now() -> datetime:
    return datetime.now(UTC)


class ViewsWorker:
    """Keeps the views up to date with ``lead.events``."""

    name = "views"

    def __init__(
        self,
        *,
        store: ViewStore,
        rules: Rulebook,
        settings: Settings,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        """``clock``: what "now" is when changes are announced (tests drive it)."""
        self.store = store
        self.settings = settings
        self.topic = settings.lead_events_topic
        # Attribution a transaction after the lead rows: the API sees a lead at once, and a
        # lead folded many times meanwhile is credited once (projections/credit_keeper.py).
        self.projection = LeadsProjection(rules, remember=REMEMBERED_LEADS, defer_credits=True)
        self._credited_at = 0.0
        self._crediting = False
        self._credits_unsure = True
        """Whether leads may be due that this process did not mark (at start, after a fault)."""
        self.announcer = Announcer(sla_hours=settings.sla_hours, clock=clock)
        self._ticked_at = 0.0
        self._slot: Slot | None = None
        self._credited = False
        """Whether every lead of the slot was checked for its attribution (once, at start)."""
        self._topic_id: str | None = None
        self._assigned: list[TopicPartition] = []
        self._unlocated: set[TopicPartition] = set()
        self._retry_at = 0.0

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is finished first."""
        consumer = kafka.consumer(self.settings, group_id=self.settings.views_group)
        consumer.subscribe(
            [self.topic],
            listener=kafka.PartitionListener(
                assigned=self._on_assigned,
                revoked=self._on_revoked,
            ),
        )
        log.info("views_started", topic=self.topic, group=self.settings.views_group)
        failures = 0
        try:
            while not stop.is_set():
                try:
                    self._step(consumer)
                except Exception as error:
                    # The broker or the views database away (or busy) is waited out; what a
                    # write raises about the data is about one event, which is parked.
                    if not transient(error):
                        raise
                    failures += 1
                    delay = will_retry(self.name, error, failures, backoff(failures))
                    self._relocate(consumer)  # what was polled was not applied
                    stop.wait(delay)
                else:
                    failures = 0
            self._credit_on_stop()
        finally:
            consumer.close(autocommit=False)
            log.info("views_stopped", topic=self.topic)

    def _credit_on_stop(self) -> None:
        """Stopped views are whole: what is due is credited (failing that, at the next start)."""
        if self._slot is None:
            return
        try:
            self._credits_unsure = True
            while self._credits_unsure or self._crediting:
                self._credit_due(idle=True)
        except Exception as error:
            if not transient(error):
                raise
            log.warning("leads_credited_at_next_start", error=describe(error))

    def _step(self, consumer: KafkaConsumer) -> None:
        if self._slot is None:
            self.store.setup()
            if self.settings.announce_changes and (seeded := self.announcer.seed(self.store)):
                log.warning("announcements_seeded_without_sending", changes=seeded)
            with self.store.transaction() as tx:
                self._slot = self.store.active_slot(tx)
        if not self._credited:
            self._add_credits(self._slot)
            self._credited = True
        self._check_topic_id(consumer)
        self._locate(consumer)
        batches = consumer.poll(timeout_ms=200, max_records=self.settings.batch_size)
        batches = {p: m for p, m in batches.items() if p not in self._unlocated}
        if batches:
            self._handle(consumer, batches)
        self._credit_due(idle=not batches)
        if (
            self.settings.announce_changes
            and time.monotonic() - self._ticked_at >= self.settings.tick_seconds
        ):
            self._tick()

    def _add_credits(self, slot: Slot) -> None:
        """Views made before attribution get it for every lead, once (a page per transaction)."""
        with self.store.transaction() as tx:
            lead_ids = self.projection.missing_credits(tx, slot)
        if not lead_ids:
            return
        log.warning("attribution_views_filling", leads=len(lead_ids))
        for start in range(0, len(lead_ids), FOLDS_PER_QUERY):
            with self.store.transaction() as tx:
                self.projection.add_credits(tx, slot, lead_ids[start : start + FOLDS_PER_QUERY])
        log.info("attribution_views_filled", leads=len(lead_ids))

    def _credit_due(self, *, idle: bool) -> None:
        """Attribution and quality of the leads folded since: a step of them, once ripe."""
        due = self.projection.credits.due
        ripe = (
            due >= CREDIT_AFTER_LEADS
            or idle
            or (time.monotonic() - self._credited_at >= self.settings.tick_seconds)
        )
        if not (self._crediting or self._credits_unsure or (due and ripe)):
            return
        with self.store.transaction() as tx:
            slot = self.store.active_slot(tx)
            if slot != self._slot:
                # (The next batch relocates, and the new slot's leads are credited there.)
                self._credits_unsure = self._crediting = False
                return
            credited = self.projection.credit_due(tx, slot, limit=CREDIT_STEP)
        self._credits_unsure = False
        self._crediting = credited == CREDIT_STEP  # (more may be left: the next step goes on)
        if not self._crediting:
            self._credited_at = time.monotonic()
        if credited:
            log.debug("leads_credited", leads=credited)

    def _tick(self) -> None:
        """Announce what time changed: leads that cooled, hand-offs that became overdue."""
        with self.store.transaction() as tx:
            slot = self.store.active_slot(tx)
            announced = self.announcer.tick(tx, slot)
        self._ticked_at = time.monotonic()
        if announced:
            counted_changes(announced, time_driven=True)
            log.info("time_driven_changes_announced", changes=len(announced))

    def _on_assigned(self, partitions: Sequence[TopicPartition]) -> None:
        """New partitions wait until their offsets are read (nothing here may fail)."""
        self._assigned = list(partitions)
        self.projection.forget()
        self._unlocated = set(partitions)
        log.info("partitions_assigned", partitions=sorted(p.partition for p in partitions))

    def _on_revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self._assigned = [p for p in self._assigned if p not in partitions]
        self._unlocated -= set(partitions)
        self.projection.forget()

    def _relocate(self, consumer: KafkaConsumer) -> None:
        """Every partition is sought again to the offsets the views hold."""
        self.projection.forget()  # its folds may have gone on with what was rolled back
        self._credits_unsure = True
        self._assigned = [p for p in self._assigned if p in consumer.assignment()]
        self._unlocated = set(self._assigned)

    def _check_topic_id(self, consumer: KafkaConsumer) -> None:
        current = kafka.topic_id(consumer, self.topic)
        if self._topic_id is not None and current is not None and str(current) != self._topic_id:
            log.warning("topic_id_changed", topic=self.topic, topic_id=str(current))
            self._topic_id = None  # known again once the partitions are located
            self._relocate(consumer)

    def _locate(self, consumer: KafkaConsumer) -> None:
        if not self._unlocated or time.monotonic() < self._retry_at:
            return
        # Asked of the broker now: after a restart the cached metadata may be of the old topic.
        current = kafka.refresh_topic_id(consumer, self.topic)
        topic_id = None if current is None else str(current)
        if topic_id is None:
            log.warning("topic_id_unknown", topic=self.topic)
        with self.store.transaction() as tx:
            slot = self._slot = self.store.active_slot(tx)
            if topic_id is not None and self.store.tie_offsets(tx, slot, self.topic, topic_id):
                fault(self.name, "topic_recreated")
                log.error("topic_recreated_reading_from_start", topic=self.topic, topic_id=topic_id)
            positions = {
                p: self.store.offset(tx, slot, self.topic, p.partition) for p in self._unlocated
            }
        self._topic_id = topic_id
        for partition, position in positions.items():
            consumer.seek(partition, 0 if position is None else position + 1)
        self._unlocated.clear()
        self.projection.forget()

    def _handle(self, consumer: KafkaConsumer, batches: Batches) -> None:
        """Apply one poll's messages in one transaction, with every partition's new offset."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            topic=self.topic,
            offsets={p.partition: [m[0].offset, m[-1].offset] for p, m in batches.items()},
        )
        events: list[tuple[ConsumerRecord, LeadEvent]] = []
        unreadable: list[tuple[ConsumerRecord, Exception]] = []
        for messages in batches.values():
            for message in messages:
                try:
                    events.append((message, decode_lead_event(message.value or b"")))
                except msgspec.DecodeError as error:
                    unreadable.append((message, error))
        try:
            with BATCH_SECONDS.labels(worker=self.name).time(), self.store.transaction() as tx:
                slot = self.store.active_slot(tx)
                if slot != self._slot:
                    # A replay swapped the views: continue from where the new slot is.
                    log.info("views_slot_changed", slot=slot)
                    self._relocate(consumer)
                    return
                changes = self.projection.apply(tx, slot, [event for _, event in events])
                announced = self._announce(tx, slot, changes)  # counted once committed
                folded = len(changes.versions)
                self._finish(tx, slot, batches, unreadable)
        except Exception as error:
            self.projection.forget()  # its folds went on with what was rolled back
            if transient(error):
                raise
            log.warning("views_batch_refused_applying_one_by_one", error=describe(error))
            folded, announced = self._apply_one_by_one(batches, events, unreadable)
        except BaseException:
            self.projection.forget()
            raise
        _commit(consumer, batches)
        consumed = sum(len(m) for m in batches.values())
        count(self.topic, "consumed", consumed)
        count(self.topic, "projected", len(events))
        counted_changes(announced, arrived=_arrivals(events))
        log.info(
            "views_batch_applied", messages=consumed, leads_folded=folded, announced=len(announced)
        )

    def _announce(self, tx: Transaction, slot: Slot, changes: Changes) -> list[Announcement]:
        """Announce what the batch changed (in its transaction)."""
        if not self.settings.announce_changes:
            return []
        merges = {
            lead_id: (survivor, changes.merged_at[lead_id])
            for lead_id, survivor in changes.merged.items()
        }
        return self.announcer.announce(
            tx, slot, changes.versions, merges=merges, erased=changes.erased
        )

    def _apply_one_by_one(
        self,
        batches: Batches,
        events: list[tuple[ConsumerRecord, LeadEvent]],
        unreadable: list[tuple[ConsumerRecord, Exception]],
    ) -> tuple[int, list[Announcement]]:
        """Each event in a transaction of its own; the ones that fail are parked.

        How many leads were folded again, and the changes announced.
        """
        assert self._slot is not None  # noqa: S101 (_locate set it)
        slot, parked = self._slot, list(unreadable)
        folded, announced = 0, []
        for message, event in events:
            try:
                with self.store.transaction() as tx:
                    changes = self.projection.apply(tx, slot, [event])
                    announced += self._announce(tx, slot, changes)
                folded += len(changes.versions)
            except Exception as error:
                self.projection.forget()
                if transient(error):
                    raise
                parked.append((message, error))
        with self.store.transaction() as tx:
            self._finish(tx, slot, batches, parked)
        return folded, announced

    def _finish(
        self,
        tx: Transaction,
        slot: Slot,
        batches: Batches,
        parked: Sequence[tuple[ConsumerRecord, Exception]],
    ) -> None:
        """Park what could not be applied, and record every partition's new offset."""
        for message, error in parked:
            self.store.park(
                tx,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error=describe(error),
                value=message.value,
            )
            fault(self.name, "event_parked")
            log.error(
                "lead_event_parked",
                partition=message.partition,
                offset=message.offset,
                error=describe(error),
            )
        count(self.topic, "parked", len(parked))
        for partition, messages in batches.items():
            self.store.record_offset(
                tx,
                slot,
                self.topic,
                partition.partition,
                messages[-1].offset,
                topic_id=self._topic_id,
            )


def _arrivals(events: Sequence[tuple[ConsumerRecord, LeadEvent]]) -> dict[str, float]:
    """Each lead's first message of the batch: when it reached ``lead.events`` (epoch seconds)."""
    found: dict[str, float] = {}
    for message, event in reversed(events):
        if message.timestamp >= 0:
            found[str(event.aggregate_id)] = message.timestamp / 1000
    return found


def _commit(consumer: KafkaConsumer, batches: Batches) -> None:
    """Tell Kafka too (for lag tools); the views hold the offsets, so a failure is fine."""
    try:
        consumer.commit_async(
            {p: OffsetAndMetadata(m[-1].offset + 1, "", -1) for p, m in batches.items()}
        )
    except KafkaError as error:
        log.info("offset_commit_skipped", error=describe(error))


class KafkaLeadEvents:
    """``lead.events`` from its beginning, for a replay (``projections/replay.py:fill_from_log``).

    Messages that do not decode are skipped: the live worker parks them, a replay skips them.
    """

    def __init__(self, settings: Settings, *, quiet_seconds: float = 2.0) -> None:
        self.topic = settings.lead_events_topic
        self._whole = kafka.WholeTopic(settings, self.topic, quiet_seconds=quiet_seconds)
        self.topic_id = self._whole.topic_id
        self.reported = self._whole.reported

    def pages(self) -> Iterator[LogPage]:
        """Each fetched batch, decoded."""
        for partition, messages in self._whole.batches(max_records=MAX_RECORDS):
            events: list[LeadEvent] = []
            for message in messages:
                with contextlib.suppress(msgspec.DecodeError):
                    events.append(decode_lead_event(message.value or b""))
            yield LogPage(partition, messages[-1].offset, events)

    def close(self) -> None:
        """Leave the broker."""
        self._whole.close()
