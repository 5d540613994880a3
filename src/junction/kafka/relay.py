"""The outbox relay: publishes one service's committed log to its Kafka topic, in order.

The log is the outbox. The relay reads it from its own checkpoint (``relay:kafka`` in the service's
store, the same mechanism as consumer checkpoints), sends each event with the stream id as key
through an idempotent producer (``acks=all``), and saves the checkpoint only once the broker has
acknowledged the whole batch. A crash in between publishes the batch again: consumers see
duplicates, which their inbox turns into no-ops. When the broker is unreachable the relay backs off
and starts again from its checkpoint with a new producer.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaProducer

from junction.kafka.bounded import bounded
from junction.kafka.config import KafkaConfig, encode, ensure_topic
from junction.signal import Signal
from junction.store import Batch, Store

log = structlog.get_logger()
CHECKPOINT = "relay:kafka"


class KafkaRelay:
    """Publishes the log of ``store``'s service to ``config.topic(service)``."""

    def __init__(self, store: Store, config: KafkaConfig, batch_size: int = 500, poll_interval: float = 0.25,
                 max_backoff: float = 2.0) -> None:
        self.store = store
        self.config = config
        self.topic = config.topic(store.service)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.position = 0  # the last log position the broker acknowledged (and the checkpoint holds)
        self.published = 0
        self.progressed = Signal()
        self._producer: AIOKafkaProducer | None = None

    async def run(self) -> None:
        """Relay until cancelled, surviving broker outages."""
        backoff = 0.05
        try:
            while True:
                try:
                    while True:
                        if not await self.publish_once():
                            await self.store.wait_for_append(self.poll_interval)
                        backoff = 0.05
                except Exception as error:  # the broker or the store failed: back off, resume from the checkpoint
                    log.warning("relay interrupted", topic=self.topic, error=repr(error), retry_in=backoff)
                    await self.close()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
        finally:
            await self.close()

    async def publish_once(self) -> int:
        """Publish the next batch after the checkpoint and save it once acknowledged; how many were sent."""
        producer = self._producer or await self._connect()
        self.position = await self.store.checkpoint(CHECKPOINT)
        envelopes = await self.store.read_log(self.position, self.batch_size)
        if not envelopes:
            return 0
        deliveries = []
        for envelope in envelopes:
            key, value = encode(envelope)
            deliveries.append(await producer.send(self.topic, key=key, value=value))
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)  # acknowledged by the broker (acks=all)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise failures[0]
        await self.save(envelopes[-1].position)
        self.published += len(envelopes)
        self.progressed.notify()
        return len(envelopes)

    async def save(self, position: int) -> None:
        """Record that everything up to ``position`` is on the broker."""
        await self.store.commit(Batch(checkpoint=(CHECKPOINT, position)))
        self.position = position

    async def lag(self) -> int:
        """Committed events not yet acknowledged by the broker."""
        return max(0, await self.store.head() - await self.store.checkpoint(CHECKPOINT))

    async def idle(self) -> bool:
        """True when everything committed is on the broker (for ``Runtime.settle``)."""
        return await self.lag() == 0

    async def close(self) -> None:
        """Stop the producer (what was not acknowledged is published again next time)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await bounded(producer.stop(), 10.0)

    async def _connect(self) -> AIOKafkaProducer:
        await ensure_topic(self.config, self.topic)
        producer = AIOKafkaProducer(bootstrap_servers=self.config.bootstrap, client_id=f"relay-{self.store.service}",
                                    enable_idempotence=True, acks="all", linger_ms=2, request_timeout_ms=15000)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        return producer
