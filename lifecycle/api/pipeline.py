"""What ops watch: each worker's position and lag per partition, and whether the parts are up.

Positions live where the workers commit them (the event store for ingest, the view tables for
the views), so ``lifecycle serve`` reports them whether or not the workers run in its process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec
import structlog
from kafka.errors import KafkaError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lifecycle.ledger.positions import ingest_positions
from lifecycle.projections.schema import instant

if TYPE_CHECKING:
    from lifecycle.api.state import Api

log = structlog.get_logger()


class PartitionState(msgspec.Struct, frozen=True, kw_only=True):
    """Where a worker stands on one partition (``end``: the broker's end offset, if known)."""

    worker: str
    topic: str
    partition: int
    position: int | None
    end: int | None

    @property
    def lag(self) -> int | None:
        """Messages not yet handled (None when the broker could not be asked)."""
        if self.end is None:
            return None
        done = -1 if self.position is None else self.position
        return max(self.end - 1 - done, 0)


def partition_states(api: Api) -> list[PartitionState]:
    """Ingest's and the views' positions per partition, with the broker's end offsets."""
    settings = api.settings
    ends = api.broker.end_offsets([settings.touchpoints_topic, settings.lead_events_topic])
    states = []
    ingest = ingest_positions(api.engine.process_recorder, settings)
    incarnation = ingest.latest()
    with api.reading() as (views, tx):
        slot = views.active_slot(tx)
        for (topic, partition), end in sorted(ends.items()):
            if topic == settings.touchpoints_topic:
                position = ingest.position(incarnation, partition)
                worker = "ingest"
            else:
                position = views.offset(tx, slot, topic, partition)
                worker = "views"
            states.append(
                PartitionState(
                    worker=worker, topic=topic, partition=partition, position=position, end=end
                )
            )
    return states


class PipelineCollector(Collector):
    """Prometheus gauges of positions and lag, read when scraped (labels: no lead data)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Gauges: broker up, position and lag per partition, parked events, views freshness."""
        yield from self._partitions()
        yield from self._views()

    def _partitions(self) -> Iterator[GaugeMetricFamily]:
        labels = ["worker", "topic", "partition"]
        up = GaugeMetricFamily("lifecycle_broker_up", "1 if the broker answered this scrape.")
        position = GaugeMetricFamily(
            "lifecycle_position", "Last offset a worker committed, per partition.", labels=labels
        )
        lag = GaugeMetricFamily(
            "lifecycle_lag",
            "Messages on the partition a worker has not handled yet "
            "(the bundled broker under-reports end offsets while batches arrive).",
            labels=labels,
        )
        states: list[PartitionState] = []
        try:
            states = partition_states(self.api)
        except KafkaError:
            up.add_metric([], 0)
        except Exception:
            log.warning("metrics_positions_unavailable", exc_info=True)
        else:
            up.add_metric([], 1)
        for state in states:
            key = [state.worker, state.topic, str(state.partition)]
            if state.position is not None:
                position.add_metric(key, state.position)
            if state.lag is not None:
                lag.add_metric(key, state.lag)
        yield from (up, position, lag)

    def _views(self) -> Iterator[GaugeMetricFamily]:
        parked = GaugeMetricFamily(
            "lifecycle_parked_events",
            "Lead events the views could not apply, kept in lifecycle_parked_events.",
        )
        fresh = GaugeMetricFamily(
            "lifecycle_views_newest_fact_timestamp_seconds",
            "Event time of the newest fact in the views (how far the views have got).",
        )
        try:
            newest = views_newest_fact(self.api)
            with self.api.reading() as (views, tx):
                parked.add_metric([], views.parked_count(tx))
        except Exception:
            log.warning("metrics_views_unavailable", exc_info=True)
        else:
            if newest is not None:
                fresh.add_metric([], newest)
        yield from (parked, fresh)


def views_newest_fact(api: Api) -> float | None:
    """The newest fact's event time in the views, as a Unix timestamp (None: empty)."""
    with api.reading() as (views, tx):
        slot = views.active_slot(tx)
        newest = instant(tx.value(f"SELECT MAX(last_fact_at) FROM lifecycle_leads_{slot}"))  # noqa: S608 (slot is a or b)
    return None if newest is None else newest.timestamp()
