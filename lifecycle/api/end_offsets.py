"""The API's view of the broker: end offsets, from a metadata-only client that reconnects."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaConnectionError, KafkaError


@dataclass
class EndOffsets:
    """A metadata-only Kafka client, opened on first use and again after a failure."""

    bootstrap: str
    _client: KafkaConsumer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def end_offsets(self, topics: list[str]) -> dict[tuple[str, int], int]:
        """End offset per (topic, partition); raises KafkaError if the broker is unreachable."""
        with self._lock:
            try:
                client = self._client or self._open()
                partitions = [
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in sorted(client.partitions_for_topic(topic) or ())
                ]
                ends = client.end_offsets(partitions) if partitions else {}
            except KafkaError:
                self.close()
                raise
            return {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

    def _open(self) -> KafkaConsumer:
        # kafka-python leaks its sockets when it cannot bootstrap: ask the OS first.
        if not any(_listening(server) for server in self.bootstrap.split(",")):
            raise KafkaConnectionError(f"nothing listens on {self.bootstrap}")
        self._client = KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            client_id="lifecycle-serve",
            request_timeout_ms=3_000,
            bootstrap_timeout_ms=2_000,
            metadata_max_age_ms=10_000,
        )
        return self._client

    def close(self) -> None:
        """Drop the client (the next call opens a new one)."""
        if self._client is not None:
            self._client.close()
            self._client = None


def _listening(server: str) -> bool:
    host, _, port = server.strip().rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except (OSError, ValueError):
        return False
    return True
