"""Where ingest stands on each partition, tied to the life of the topic it read.

A topic that is deleted and created again (the bundled broker after a restart, a cluster
restored from a backup, a topic recreated by hand) starts its offsets at zero again: positions
taken on the old one would skip the new one's messages, or take them for repeats. Kafka gives
each topic a new id when it is created (KIP-516); the engine numbers the ids it meets, its
*incarnations*, and keeps positions per incarnation.

Everything is kept as tracking records of the event store (which only accept a higher number
than the one they hold): ``GROUP:TOPIC:incarnation`` is the newest incarnation's number,
``GROUP:TOPIC@TOPIC_ID`` the number a topic id was given. Incarnation 1 keeps its positions
under ``GROUP:TOPIC:PARTITION``, as before incarnations were kept (so stores written then go on
where they were); incarnation N > 1 under ``GROUP:TOPIC#N:PARTITION``.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import IntegrityError, ProcessRecorder, Tracking

from lifecycle.errors import TransientError
from lifecycle.settings import Settings

FIRST = 1
# Claims lost to other processes in a row before giving up (each loss is another's success).
MAX_CLAIMS = 16


class IncarnationError(TransientError):
    """Other processes kept numbering incarnations of the topic at the same time."""


@dataclass(frozen=True)
class Incarnation:
    """The incarnation of a topic a consumer reads, and the one it read before (if another)."""

    number: int
    topic_id: UUID | None
    previous: int | None = None

    @property
    def recreated(self) -> bool:
        """Whether this is a new life of a topic the consumer had read before."""
        return self.previous is not None and self.previous != self.number


class TopicPositions:
    """The positions of one consumer group on one topic, in the event store."""

    def __init__(self, recorder: ProcessRecorder, *, group: str, topic: str) -> None:
        self.recorder = recorder
        self.prefix = f"{group}:{topic}"

    def name(self, incarnation: int, partition: int) -> str:
        """The tracking name of a partition's position in an incarnation."""
        if incarnation <= FIRST:
            return f"{self.prefix}:{partition}"
        return f"{self.prefix}#{incarnation}:{partition}"

    def latest(self) -> int:
        """The newest incarnation's number (1 when none was numbered yet)."""
        return self.recorder.max_tracking_id(f"{self.prefix}:incarnation") or FIRST

    def incarnation(self, topic_id: UUID | None) -> Incarnation:
        """The incarnation of the topic with this id, numbered now if it is new.

        Without a topic id (a broker older than Kafka 2.8) a recreated topic cannot be told
        apart: the newest incarnation goes on.
        """
        counter = f"{self.prefix}:incarnation"
        latest = self.recorder.max_tracking_id(counter)
        if topic_id is None:
            return Incarnation(latest or FIRST, None)
        for _ in range(MAX_CLAIMS):
            known = self.recorder.max_tracking_id(self._id_name(topic_id))
            if known is not None:
                if latest is None or latest < known:
                    self._track(counter, known)  # (a claim whose counter was never raised)
                return Incarnation(known, topic_id)
            # The number is claimed on the counter first: it only takes a higher number, so
            # two ids can never get the same one. The first id seen takes over the positions
            # kept before ids were (incarnation 1).
            number = FIRST if latest is None else latest + 1
            if self._track(counter, number) and self._track(self._id_name(topic_id), number):
                return Incarnation(number, topic_id, previous=latest)
            # Another process claimed that number, for this id or another: look again.
            latest = self.recorder.max_tracking_id(counter)
        raise IncarnationError(f"could not number a new incarnation of {self.prefix}")

    def position(self, incarnation: int, partition: int) -> int | None:
        """The last offset recorded on the partition in that incarnation (None: nothing)."""
        return self.recorder.max_tracking_id(self.name(incarnation, partition))

    def _id_name(self, topic_id: UUID) -> str:
        return f"{self.prefix}@{topic_id}"

    def _track(self, name: str, number: int) -> bool:
        """Record ``number`` under ``name``; False if it holds that number or more already."""
        try:
            self.recorder.insert_tracking(Tracking(name, number))
        except IntegrityError:
            return False
        return True


def ingest_positions(recorder: ProcessRecorder, settings: Settings) -> TopicPositions:
    """Where ingest stands on the touchpoints topic (the ingest worker's and the API's view)."""
    return TopicPositions(recorder, group=settings.ingest_group, topic=settings.touchpoints_topic)
