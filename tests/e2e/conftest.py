"""The real broker for end-to-end tests, and pipeline settings isolated per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaProducer

from consumers.admin import create_topics
from lifecycle.demo.broker import LocalBroker, free_port
from lifecycle.settings import Settings

PARTITIONS = 3


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker(port=free_port(), partitions=PARTITIONS) as local:
        yield local


@pytest.fixture
def settings(broker, database_url) -> Settings:
    """Topics and groups of their own for each test, on the shared broker."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap=broker.bootstrap,
        touchpoints_topic=f"lead.touchpoints.{suffix}",
        dead_letter_topic=f"lead.touchpoints.dlq.{suffix}",
        lead_events_topic=f"lead.events.{suffix}",
        changes_topic=f"lead.lifecycle.{suffix}",
        webhooks_dead_letter_topic=f"lead.lifecycle.webhooks.dlq.{suffix}",
        webhooks_group=f"lifecycle-webhooks-{suffix}",
        ingest_group=f"lifecycle-ingest-{suffix}",
        relay_name=f"lifecycle-relay-{suffix}",
        batch_size=200,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        log_format="json",
    )
    create_topics(
        broker.bootstrap,
        [settings.touchpoints_topic, settings.dead_letter_topic, settings.lead_events_topic],
        partitions=PARTITIONS,
    )
    return settings


@pytest.fixture
def produce(settings) -> Iterator[Callable[..., None]]:
    """``produce(messages)``: (key, value, headers) triples onto the touchpoints topic."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)

    def send(messages: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]) -> None:
        futures = [
            producer.send(settings.touchpoints_topic, key=key, value=value, headers=headers)
            for key, value, headers in messages
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=30)

    yield send
    producer.close()
