"""The outbox relay to RabbitMQ: one service's committed log to its exchange, with publisher confirms.

Before its first publication the relay declares the queues of every subscriber (a queue only keeps
what arrives after it exists). Each event goes out as a persistent message (routing key = event
type, a per-message TTL when the event has a deadline), and a batch counts as published only once
the broker confirmed every message of it: a confirm means each queue the message was routed to has
it on disk. The checkpoint (``relay:rabbitmq``) is saved after that (``junction.outbox``); a nack,
a withheld confirm (a broker under a resource alarm) or a lost connection make the relay back off
and publish again from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange

from junction.clock import Clock, RealClock
from junction.events import Envelope
from junction.outbox import OutboxRelay
from junction.rabbitmq.config import RabbitConfig
from junction.rabbitmq.messages import encode
from junction.rabbitmq.queues import Subscriber, declare_exchange, declare_queue
from junction.store import Store

CHECKPOINT = "relay:rabbitmq"


class RabbitRelay(OutboxRelay):
    """Publishes the log of ``store``'s service to ``config.exchange(service)``."""

    checkpoint = CHECKPOINT

    def __init__(self, store: Store, config: RabbitConfig, subscribers: list[Subscriber], clock: Clock | None = None,
                 poll_interval: float = 0.25, timeout: float = 15.0) -> None:
        super().__init__(store, poll_interval=poll_interval)
        self.config = config
        self.subscribers = subscribers
        self.clock = clock or RealClock()  # deadlines are in platform time
        self.timeout = timeout  # for connecting and declaring, and for a batch's confirms
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None

    async def publish(self, envelopes: list[Envelope]) -> None:
        """Publish on one channel (so in order) and wait for every confirm; a nack raises DeliveryError."""
        exchange = self._exchange or await self._connect()
        # mandatory=False: an event type no subscription binds has nowhere to go, and the log keeps it anyway.
        confirms = [exchange.publish(encode(envelope, self.clock), routing_key=envelope.type, mandatory=False)
                    for envelope in envelopes]
        async with asyncio.timeout(self.timeout):
            await asyncio.gather(*confirms)

    async def close(self) -> None:
        """Drop the connection (what was not confirmed is published again next time)."""
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _connect(self) -> AbstractExchange:
        connection = await aio_pika.connect(self.config.url, timeout=self.timeout,
                                            client_properties={"connection_name": f"relay-{self.store.service}"})
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await declare_exchange(channel, self.config, self.store.service)
            for subscriber in self.subscribers:
                await declare_queue(channel, self.config, subscriber)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self._connection, self._exchange = connection, exchange
        return exchange
