"""Dead letters: bad input from ``lead.touchpoints`` kept byte for byte on the DLQ topic.

The headers are the ones Spring Kafka's DeadLetterPublishingRecoverer writes (partition as a
4-byte and offset and timestamp as 8-byte big-endian integers), so existing tools read them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from consumers import kafka
from consumers.admin import create_topics, dead_letter_configs
from lifecycle.settings import Settings

PREFIX = "kafka_dlt-"
TOPIC = f"{PREFIX}original-topic"
PARTITION = f"{PREFIX}original-partition"
OFFSET = f"{PREFIX}original-offset"
TIMESTAMP = f"{PREFIX}original-timestamp"
TIMESTAMP_TYPE = f"{PREFIX}original-timestamp-type"
EXCEPTION_FQCN = f"{PREFIX}exception-fqcn"
EXCEPTION_MESSAGE = f"{PREFIX}exception-message"


def dead_letter_headers(message: ConsumerRecord, error: Exception) -> list[tuple[str, bytes]]:
    """The original headers plus where the message came from and why it was refused."""
    cls = type(error)
    return [
        *message.headers,
        (TOPIC, message.topic.encode()),
        (PARTITION, message.partition.to_bytes(4, "big", signed=True)),
        (OFFSET, message.offset.to_bytes(8, "big", signed=True)),
        (TIMESTAMP, int(message.timestamp).to_bytes(8, "big", signed=True)),
        (TIMESTAMP_TYPE, b"CreateTime" if message.timestamp_type == 0 else b"LogAppendTime"),
        (EXCEPTION_FQCN, f"{cls.__module__}.{cls.__qualname__}".encode()),
        (EXCEPTION_MESSAGE, str(error).encode()),
    ]


def send_dead_letters(
    producer: KafkaProducer,
    topic: str,
    refused: Sequence[tuple[ConsumerRecord, Exception]],
    *,
    timeout: float = 30.0,
) -> None:
    """Send the refused messages and wait until the broker acknowledged every one."""
    futures = [
        producer.send(
            topic, key=message.key, value=message.value, headers=dead_letter_headers(message, error)
        )
        for message, error in refused
    ]
    producer.flush(timeout=timeout)
    for future in futures:
        future.get(timeout=timeout)  # raises if the broker refused it


# The commands that read or send dead letters say the broker is unreachable within seconds.
BOOTSTRAP_TIMEOUT_MS = 5_000
# A lost broker must show as a failed send within seconds, so that the batch is retried.
PRODUCER_OPTIONS: dict[str, Any] = {
    "max_block_ms": 10_000,
    "request_timeout_ms": 5_000,
    "delivery_timeout_ms": 10_000,
}


class DeadLetterProducer:
    """Sends dead letters with a producer made on first use, and made again after a failure.

    An idempotent producer that lived through a broker restart keeps failing
    (``OutOfOrderSequenceNumberError``, then ``InitProducerIdResponse`` errors): a new one
    gets a new producer id from the new broker.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: KafkaProducer | None = None

    def send(self, refused: Sequence[tuple[ConsumerRecord, Exception]]) -> None:
        """Send the refused messages and wait for the broker's acknowledgement of each."""
        if not refused:
            return
        if self._producer is None:
            create_topics(
                self.settings.kafka_bootstrap,
                [self.settings.dead_letter_topic],
                partitions=1,
                configs=dead_letter_configs(self.settings.dlq_retention_days),
            )
            self._producer = kafka.producer(self.settings, **PRODUCER_OPTIONS)
        try:
            send_dead_letters(
                self._producer, self.settings.dead_letter_topic, refused, timeout=15.0
            )
        except KafkaError:
            self.close()
            raise

    def close(self) -> None:
        """Close the producer (the next send makes a new one)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(KafkaError):  # it is dropped because it failed
                producer.close(timeout=1)


@dataclass(frozen=True)
class DeadLetter:
    """One message on the DLQ, with the reason it is there."""

    partition: int
    offset: int
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    exception: str
    reason: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]

    @property
    def ref(self) -> str:
        """How ``dlq redrive`` names it: ``PARTITION:OFFSET`` on the DLQ topic."""
        return f"{self.partition}:{self.offset}"

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the message had before it was dead-lettered."""
        return [(name, value) for name, value in self.headers if not name.startswith(PREFIX)]


def _read(message: ConsumerRecord) -> DeadLetter:
    headers: dict[str, bytes] = dict(message.headers)

    def number(name: str) -> int | None:
        raw = headers.get(name)
        return int.from_bytes(raw, "big", signed=True) if raw else None

    return DeadLetter(
        partition=message.partition,
        offset=message.offset,
        original_topic=headers.get(TOPIC, b"").decode(errors="replace"),
        original_partition=number(PARTITION),
        original_offset=number(OFFSET),
        exception=headers.get(EXCEPTION_FQCN, b"").decode(errors="replace"),
        reason=headers.get(EXCEPTION_MESSAGE, b"").decode(errors="replace"),
        key=message.key,
        value=message.value,
        headers=list(message.headers),
    )


def read_dead_letters(settings: Settings, *, timeout_ms: int = 10_000) -> list[DeadLetter]:
    """Every message now on the DLQ topic, oldest first per partition."""
    whole = kafka.WholeTopic(
        settings,
        settings.dead_letter_topic,
        quiet_seconds=QUIET_SECONDS,
        timeout_seconds=timeout_ms / 1000,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
    )
    with contextlib.closing(whole):
        letters = [_read(m) for _, messages in whole.batches() for m in messages]
    return sorted(letters, key=lambda letter: (letter.partition, letter.offset))


# Nothing new for this long after the reported ends: the DLQ has been read whole.
QUIET_SECONDS = 0.5


def redrive(settings: Settings, letters: Iterable[DeadLetter]) -> int:
    """Send dead letters back to the touchpoints topic as they first arrived; how many."""
    producer = kafka.producer(settings, bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
    try:
        futures = [
            producer.send(
                settings.touchpoints_topic,
                key=letter.key,
                value=letter.value,
                headers=letter.original_headers,
            )
            for letter in letters
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
        return len(futures)
    finally:
        producer.close()
