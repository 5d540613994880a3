"""Consumer-group lag as the broker sees it, for operators (``junction status``).

A group's lag on a topic is, summed over the topic's partitions, the end offset minus the group's
committed offset (the earliest offset where the group has committed nothing, since a new group
starts there). This is what ``kafka-consumer-groups.sh --describe`` shows, and it needs no member of
the group to be running. Consumers commit every 100 messages and whenever they catch up, so a busy
consumer's lag here may be a little higher than its own view of it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from junction.kafka.bounded import bounded
from junction.kafka.config import KafkaConfig

UNKNOWN_TOPIC = 3


@dataclass(frozen=True)
class GroupLag:
    """How far one consumer group got on one topic."""

    group: str
    topic: str
    position: int  # the sum of the committed offsets (of the earliest offsets where none is committed)
    lag: int  # messages on the topic the group has not committed yet


async def group_lags(config: KafkaConfig, groups: list[tuple[str, str]], timeout: float = 10.0) -> list[GroupLag]:
    """The lag of each ``(group, topic)``; a topic that does not exist yet has nothing to lag behind.

    Raises ``KafkaError``, ``OSError`` or ``TimeoutError`` when the broker does not answer in time.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap, client_id="junction-status",
                                request_timeout_ms=int(timeout * 1000))
    reader = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, client_id="junction-status",
                              enable_auto_commit=False, request_timeout_ms=int(timeout * 1000) + 1000)
    try:
        await bounded(admin.start(), timeout)
        await bounded(reader.start(), timeout)
        return await bounded(_measure(admin, reader, groups), timeout * 2)
    finally:
        with contextlib.suppress(Exception):
            await bounded(reader.stop(), timeout)
        with contextlib.suppress(Exception):
            await bounded(admin.close(), timeout)


async def _measure(admin: AIOKafkaAdminClient, reader: AIOKafkaConsumer,
                   groups: list[tuple[str, str]]) -> list[GroupLag]:
    topics = sorted({topic for _, topic in groups})
    partitions: dict[str, list[TopicPartition]] = {topic: [] for topic in topics}
    for described in await admin.describe_topics(topics):
        if described["error_code"] == UNKNOWN_TOPIC:
            continue  # no relay has published yet
        if described["error_code"] != 0:
            raise RuntimeError(f"describing topic {described['topic']} failed (error {described['error_code']})")
        partitions[described["topic"]] = [TopicPartition(described["topic"], p["partition"])
                                          for p in described["partitions"]]
    every = [tp for tps in partitions.values() for tp in tps]
    ends = await reader.end_offsets(every) if every else {}
    starts = await reader.beginning_offsets(every) if every else {}
    lags = []
    for group, topic in groups:
        tps = partitions[topic]
        committed = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
        position = lag = 0
        for tp in tps:
            mark = committed.get(tp)
            offset = mark.offset if mark is not None and mark.offset >= 0 else starts[tp]
            position += offset
            lag += max(0, ends[tp] - offset)
        lags.append(GroupLag(group, topic, position, lag))
    return lags
