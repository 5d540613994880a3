"""Following a service's events on Kafka from now on, for live views (the gateway's subscriptions).

A follower is not a consumer: it belongs to no group, commits nothing and starts at the topic's end,
so a gateway in the distributed topology learns of other services' events through their published
topics, never by opening their databases.
"""

from __future__ import annotations

import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from junction.events import Envelope
from junction.kafka.bounded import bounded
from junction.kafka.config import KafkaConfig, decode, ensure_topic
from junction.sources import Follower, FollowerFactory

log = structlog.get_logger()


class KafkaFollower(Follower):
    """Every partition of ``service``'s topic, from the end offsets at ``start``."""

    def __init__(self, config: KafkaConfig, service: str, timeout: float = 10.0) -> None:
        self.config = config
        self.topic = config.topic(service)
        self.timeout = timeout
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        partitions = await ensure_topic(self.config, self.topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, client_id=f"follow-{self.topic}",
                                    enable_auto_commit=False, fetch_max_wait_ms=200,
                                    request_timeout_ms=int(self.timeout * 1000) + 1000)
        try:
            await bounded(consumer.start(), self.timeout)
            tps = [TopicPartition(self.topic, p) for p in range(partitions)]
            consumer.assign(tps)
            ends = await bounded(consumer.end_offsets(tps), self.timeout)
            for tp, offset in ends.items():  # pinned now, so nothing committed after ``start`` is missed
                consumer.seek(tp, offset)
        except BaseException:
            with contextlib.suppress(Exception):
                await bounded(consumer.stop(), self.timeout)
            raise
        self._consumer = consumer

    async def next(self, timeout: float) -> list[Envelope]:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"follower of {self.topic} is not started")
        try:
            records = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=500)
        except KafkaError as error:  # the client reconnects by itself; a live view just waits
            log.warning("follow fetch failed", topic=self.topic, error=repr(error))
            return []
        events = []
        for messages in records.values():
            for message in messages:
                try:
                    events.append(decode(message.value or b""))
                except (ValueError, KeyError, TypeError) as error:
                    log.error("undecodable record passed over", topic=self.topic, error=repr(error))
        return events

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await bounded(consumer.stop(), self.timeout)


def kafka_followers(config: KafkaConfig) -> FollowerFactory:
    """A ``Runtime`` follower factory: live views follow each service's topic."""

    def make(service: str) -> Follower:
        return KafkaFollower(config, service)

    return make
