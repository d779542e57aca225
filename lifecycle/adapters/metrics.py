"""Counters and timings of the workers (served at ``/metrics`` by the workers and the API).

Labels are topics, outcomes and worker names only: never a lead id or personal data.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MESSAGES = Counter(
    "lifecycle_messages",
    "Messages handled, by topic and outcome "
    "(consumed, recorded, duplicate, dead_lettered, published).",
    ["topic", "outcome"],
)
BATCH_SECONDS = Histogram(
    "lifecycle_batch_seconds",
    "Time to process one batch, by worker (ingest, relay).",
    ["worker"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


FAULTS = Counter(
    "lifecycle_faults",
    "Faults a worker met and lived through, by worker and kind (broker, database, "
    "topic_recreated, partition_rewound, undecodable_batch, event_parked).",
    ["worker", "kind"],
)


def fault(worker: str, kind: str) -> None:
    """Count a fault a worker met (and will retry, or worked around)."""
    FAULTS.labels(worker=worker, kind=kind).inc()


def count(topic: str, outcome: str, amount: int = 1) -> None:
    """Add to a message counter (nothing for zero)."""
    if amount:
        MESSAGES.labels(topic=topic, outcome=outcome).inc(amount)


def counted(topic: str, outcome: str) -> int:
    """A message counter's value in this process (0 if nothing was counted yet).

    Reads this one counter only: collecting the whole registry, as often as progress bars
    and the bench poll, costs the workers being watched a noticeable share of the interpreter.
    """
    for metric in MESSAGES.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels == {
                "topic": topic,
                "outcome": outcome,
            }:
                return int(sample.value)
    return 0


CHANGES = Counter(
    "lifecycle_changes",
    "Lifecycle changes announced, by type (StageChanged, TemperatureChanged, ...).",
    ["type"],
)
TIME_DRIVEN_DELAY = Histogram(
    "lifecycle_time_driven_delay_seconds",
    "How long after its instant a time-driven change (cooling, an overdue hand-off) was announced.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
ANNOUNCEMENT_DELAY = Histogram(
    "lifecycle_announcement_delay_seconds",
    "How long after its fact arrived on lead.events (the message's timestamp) a change was "
    "announced (committed to the outbox).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
WEBHOOK_DELIVERIES = Counter(
    "lifecycle_webhook_deliveries",
    "Webhook deliveries by endpoint (its name in the endpoints file, never its URL) and "
    "outcome (delivered, dead_lettered).",
    ["endpoint", "outcome"],
)
WEBHOOK_ATTEMPTS = Histogram(
    "lifecycle_webhook_attempts",
    "Attempts one webhook delivery took, by endpoint.",
    ["endpoint"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 20),
)
WEBHOOK_SECONDS = Histogram(
    "lifecycle_webhook_request_seconds",
    "Time of one webhook request (an attempt), by endpoint.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
