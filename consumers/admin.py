"""Kafka administration the workers need: creating the topics they write to."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DAY_MS = 86_400_000


def dead_letter_configs(retention_days: int) -> dict[str, str]:
    """A dead-letter topic's settings: raw messages hold personal data, so they expire."""
    return {"retention.ms": str(retention_days * DAY_MS)}


def create_topics(
    bootstrap: str,
    topics: Iterable[str],
    *,
    partitions: int,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create topics that do not exist yet, with ``configs`` (existing ones stay as they are)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="lifecycle-admin")
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs=dict(configs or {}),
            )
            for name in topics
            if name not in existing
        ]
        # Another process may create them between our list and create: that is fine.
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
    finally:
        admin.close()
