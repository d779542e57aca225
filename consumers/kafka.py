"""Kafka clients configured the way every worker needs them (see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition

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
    }
    options.update(overrides)
    return KafkaConsumer(**options)


def producer(settings: Settings, **overrides: Any) -> KafkaProducer:  # noqa: ANN401
    """An idempotent producer that waits for all in-sync replicas (kafka-python 3 defaults)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 5,
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
