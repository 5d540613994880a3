"""The broker-side layout of a subscription: exchange, durable queue with its dead letters, bindings.

A queue keeps only what reaches it after it exists, so a service's relay declares the queues of every
subscription to that service (the system's definitions say which) before it publishes; a consumer
declares its own queue too. Whichever comes first creates them; declaring again with the same
arguments changes nothing. Dead letters (expired or rejected messages) go through the default
exchange straight to ``<queue>.dead``, which keeps them until an operator looks.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aio_pika
from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
from aio_pika.exceptions import ChannelClosed

from junction.rabbitmq.config import RabbitConfig
from junction.runtime import System
from junction.service import SubscriptionSpec


@dataclass(frozen=True)
class Subscriber:
    """One subscription's queue: which service consumes it, from which source, for which event types."""

    service: str
    subscription: str
    source: str
    event_types: frozenset[str]

    @classmethod
    def of(cls, service: str, spec: SubscriptionSpec) -> Subscriber:
        """The queue of subscription ``spec`` of ``service``."""
        return cls(service, spec.name, spec.source, frozenset(spec.handlers))


def subscribers(system: System, source: str) -> list[Subscriber]:
    """Every subscription of ``system`` to ``source``'s events."""
    return [Subscriber.of(service.name, spec)
            for service in system.services for spec in service.subscriptions.values() if spec.source == source]


async def declare_exchange(channel: AbstractChannel, config: RabbitConfig, source: str) -> AbstractExchange:
    """The durable direct exchange ``source``'s events are published to (routing key = event type)."""
    return await channel.declare_exchange(config.exchange(source), ExchangeType.DIRECT, durable=True)


async def declare_queue(channel: AbstractChannel, config: RabbitConfig, subscriber: Subscriber) -> AbstractQueue:
    """The subscriber's durable queue, bound for its event types, and its dead-letter queue."""
    exchange = await declare_exchange(channel, config, subscriber.source)
    dead = config.dead_letter_queue(subscriber.service, subscriber.subscription)
    await channel.declare_queue(dead, durable=True, arguments={"x-queue-type": "classic"})
    queue = await channel.declare_queue(
        config.queue(subscriber.service, subscriber.subscription), durable=True,
        arguments={"x-queue-type": "classic", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead},
    )
    for event_type in sorted(subscriber.event_types):
        await queue.bind(exchange, routing_key=event_type)
    return queue


async def depths(config: RabbitConfig, names: list[str], timeout: float = 5.0) -> dict[str, int | None]:
    """Messages ready in each named queue (None for one that does not exist), looked at without declaring anything."""
    found: dict[str, int | None] = {}
    async with asyncio.timeout(timeout):
        connection = await aio_pika.connect(config.url, timeout=timeout)
        async with connection:
            for name in names:
                # A passive declare of a missing queue closes its channel (404): one channel per queue.
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                    found[name] = queue.declaration_result.message_count or 0
                except ChannelClosed:
                    found[name] = None
                finally:
                    if not channel.is_closed:
                        await channel.close()
    return found
