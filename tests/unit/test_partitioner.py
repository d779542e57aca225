"""The relay's partitioner sends each key where kafka-python's default (and Java's) would."""

from __future__ import annotations

import uuid

from kafka.partitioner import DefaultPartitioner

from consumers.kafka import KeyHashPartitioner


class Topics:
    """The part of kafka-python's cluster metadata a partitioner reads: one topic."""

    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"lead.events"}

    def partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, _topic: str) -> set[int]:
        return self.partitions


def test_every_key_goes_to_the_partition_the_default_partitioner_gives_it_twice_over() -> None:
    keys = [str(uuid.uuid4()).encode() for _ in range(1_000)]
    for count in (1, 6, 12):
        cluster = Topics(count)
        default, remembering = DefaultPartitioner(), KeyHashPartitioner()
        for key in keys + keys:  # the second time from the remembered hashes
            expected = default.partition("lead.events", None, key, None, None, cluster)
            assert remembering.partition("lead.events", None, key, None, None, cluster) == expected


def test_messages_without_a_key_still_get_one_of_the_topics_partitions() -> None:
    partition = KeyHashPartitioner().partition("lead.events", None, None, None, b"{}", Topics(6))
    assert partition in range(6)
