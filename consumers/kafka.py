"""Kafka clients configured the way every worker needs them (read-committed, no auto-commit)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CorruptRecordError, KafkaTimeoutError, UnsupportedCodecError
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2

from lifecycle.errors import TransientError
from lifecycle.settings import Settings


def consumer(settings: Settings, *, group_id: str | None, **overrides: Any) -> KafkaConsumer:  # noqa: ANN401
    """A consumer that never commits by itself and reads only committed records.

    Positions come from the event store; Kafka's committed offsets only inform lag tools.
    """
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "client_id": group_id or "lifecycle",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_poll_records": settings.batch_size,
        # A topic recreated on a running broker is noticed at the next metadata refresh at
        # the latest (a broker restart is noticed at once): see topic_id().
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
    }
    options.update(overrides)
    return KafkaConsumer(**options)


METADATA_MAX_AGE_MS = 30_000


def topic_id(client: KafkaConsumer | KafkaProducer, topic: str) -> UUID | None:
    """The id the broker gave the topic when it was created (KIP-516), as the client last heard.

    None when the client has not heard of the topic yet or the broker gives no ids (before
    Kafka 2.8). kafka-python keeps these ids in its cluster metadata, which has no public
    accessor on the clients themselves: read there.
    """
    cluster = client._cluster if isinstance(client, KafkaConsumer) else client._metadata  # noqa: SLF001
    found = cluster.topic_id(topic)
    return found if isinstance(found, UUID) and found.int else None


Fetched = tuple[int, list[ConsumerRecord]]
"""A partition's number and the messages fetched from it."""


class WholeTopic:
    """Every message on a topic, from its beginning, read until the topic stays quiet.

    A fetch may come back empty before the end, and the bundled broker reports end offsets too
    low when records were produced in batches: so reading goes on past the reported ends until
    nothing has come for ``quiet_seconds``.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        *,
        quiet_seconds: float,
        timeout_seconds: float | None = None,
        **overrides: Any,  # noqa: ANN401
    ) -> None:
        self.topic = topic
        self.quiet_seconds = quiet_seconds
        self.timeout_seconds = timeout_seconds
        self._consumer = consumer(settings, group_id=None, **overrides)
        try:
            ids = self._consumer.partitions_for_topic(topic) or set()
            self.partitions = [TopicPartition(topic, p) for p in sorted(ids)]
            found = topic_id(self._consumer, topic)
            self.topic_id = None if found is None else str(found)
            self.ends: dict[TopicPartition, int] = {}
            if self.partitions:  # (a topic not there yet holds nothing to read)
                self._consumer.assign(self.partitions)
                self._consumer.seek_to_beginning(*self.partitions)
                self.ends = self._consumer.end_offsets(self.partitions)
        except BaseException:
            self.close()
            raise

    @property
    def reported(self) -> int:
        """How many messages the broker says the topic holds (a lower bound, see above)."""
        return sum(self.ends.values())

    def batches(self, *, max_records: int | None = None) -> Iterator[Fetched]:
        """Each fetched batch as (partition, its messages), in offset order per partition."""
        if not self.partitions:
            return
        start = quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < self.quiet_seconds or any(
            self._consumer.position(tp) < self.ends[tp] for tp in self.partitions
        ):
            if self.timeout_seconds is not None and time.monotonic() - start > self.timeout_seconds:
                raise KafkaTimeoutError(f"could not read {self.topic} to its end in time")
            batches = self._consumer.poll(timeout_ms=200, max_records=max_records)
            if batches:
                quiet_since = time.monotonic()
            for partition, messages in batches.items():
                yield partition.partition, messages

    def close(self) -> None:
        """Leave the broker (nothing is committed)."""
        self._consumer.close(autocommit=False)


def readable(settings: Settings, partition: TopicPartition, offset: int) -> bool:
    """Whether a consumer of its own can read the record batch at ``offset`` (or nothing is)."""
    probe = consumer(settings, group_id=None, enable_incremental_fetch_sessions=False)
    try:
        probe.assign([partition])
        probe.seek(partition, offset)
        deadline = time.monotonic() + PROBE_SECONDS
        while time.monotonic() < deadline:
            if probe.poll(timeout_ms=500, max_records=1):
                return True
    except (UnsupportedCodecError, CorruptRecordError):
        return False
    finally:
        probe.close()
    return True


PROBE_SECONDS = 3.0


class TopicMissingError(TransientError):
    """The topic is not on the broker (yet): a broker that just restarted, say."""


def refresh_topic_id(consumer: KafkaConsumer, topic: str) -> UUID | None:
    """Ask the broker for fresh metadata now; the topic's id (None: the broker gives none)."""
    if topic not in consumer.topics():
        raise TopicMissingError(f"{topic} is not on the broker")
    return topic_id(consumer, topic)


# Keys recently hashed (one entry: a key's bytes and an int, about 150 bytes).
HASHED_KEYS = 50_000


@functools.lru_cache(maxsize=HASHED_KEYS)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


class KeyHashPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's default partitioner (murmur2 of the key, as Java's), hashes remembered.

    murmur2 runs in pure Python: about a tenth of the relay's time, for keys (lead ids) that
    come back with each of a lead's events. Messages without a key go to the default.
    """

    def partition(  # noqa: PLR0913, PLR0917 (kafka-python's signature)
        self,
        topic: str,
        key: object,
        serialized_key: bytes | None,
        value: object,
        serialized_value: bytes | None,
        cluster: Any,  # noqa: ANN401
    ) -> int:
        """The partition of ``serialized_key`` among the topic's partitions."""
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return super().partition(  # type: ignore[no-any-return]
                topic, key, serialized_key, value, serialized_value, cluster
            )
        ordered = sorted(partitions)
        return ordered[_key_hash(serialized_key) % len(ordered)]  # type: ignore[no-any-return]


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:  # noqa: ANN401
    """An idempotent producer that waits for all in-sync replicas (kafka-python 3 defaults)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
        "partitioner": KeyHashPartitioner(),
    }
    options.update(overrides)
    return KafkaProducer(**options)


class PartitionListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partition assignments to a worker (kafka-python calls it inside ``poll``)."""

    def __init__(
        self,
        *,
        assigned: Callable[[Sequence[TopicPartition]], None],
        revoked: Callable[[Sequence[TopicPartition]], None],
    ) -> None:
        self._assigned = assigned
        self._revoked = revoked

    def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        """Partitions taken away."""
        self._revoked(revoked)

    def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        """Partitions given."""
        self._assigned(assigned)
