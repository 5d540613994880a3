"""The outbox relay to Kafka: one service's committed log to its topic, in order.

Each event goes out with the stream id as key (so a stream stays in one partition, in order)
through an idempotent producer with ``acks=all``; a batch counts as published once the broker
acknowledged every record of it, and only then is the checkpoint (``relay:kafka``) saved
(``junction.outbox``). A crash in between publishes the batch again: consumers see duplicates,
which their inbox turns into no-ops. Events a service exports (``Service.export``) also go to their
named topic with their codec (``junction.kafka.exports``), in the same acknowledged batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from junction.events import Envelope
from junction.kafka.bounded import bounded
from junction.kafka.config import KafkaConfig, encode, ensure_topic
from junction.kafka.exports import encode_export
from junction.outbox import OutboxRelay
from junction.service import Codec, ExportSpec
from junction.store import Store

CHECKPOINT = "relay:kafka"


class KafkaRelay(OutboxRelay):
    """Publishes the log of ``store``'s service to ``config.topic(service)``."""

    checkpoint = CHECKPOINT

    def __init__(self, store: Store, config: KafkaConfig, batch_size: int = 500, poll_interval: float = 0.25,
                 max_backoff: float = 2.0, exports: Sequence[ExportSpec] = ()) -> None:
        super().__init__(store, batch_size=batch_size, poll_interval=poll_interval, max_backoff=max_backoff)
        self.config = config
        self.topic = config.topic(store.service)
        # event type -> (its exported topic, its codec)
        self.exports: dict[str, tuple[str, Codec]] = {
            e.event.event_name: (config.export_topic(e.topic), e.codec) for e in exports}
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, envelopes: list[Envelope]) -> None:
        """Send in order and wait until the broker acknowledged every record (acks=all)."""
        producer = self._producer or await self._connect()
        deliveries = []
        for envelope in envelopes:
            key, value = encode(envelope)
            deliveries.append(await producer.send(self.topic, key=key, value=value))
            if envelope.type in self.exports:
                topic, codec = self.exports[envelope.type]
                key, value, headers = encode_export(envelope, codec, topic, self.store.service)
                deliveries.append(await producer.send(topic, key=key, value=value, headers=headers))
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]

    async def close(self) -> None:
        """Stop the producer (what was not acknowledged is published again next time)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await bounded(producer.stop(), 10.0)

    async def _connect(self) -> AIOKafkaProducer:
        for topic in {self.topic, *(t for t, _ in self.exports.values())}:
            await ensure_topic(self.config, topic)
        producer = AIOKafkaProducer(bootstrap_servers=self.config.bootstrap, client_id=f"relay-{self.store.service}",
                                    enable_idempotence=True, acks="all", linger_ms=2, request_timeout_ms=15000)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        return producer
