"""A subscription's messages from RabbitMQ: one durable queue, shared by every instance of the service.

Several consumers on one queue compete: the broker hands each message to one of them, at most
``prefetch`` unacknowledged messages each (QoS). Acknowledgements are manual and come only after
the worker has dealt with a message (its handler's transaction committed with the inbox row, or the
message parked); they are sent in batches (``ack_every``, and whenever the worker is caught up). A
consumer that dies before acknowledging has its messages delivered again, to itself or another
consumer, and the inbox turns the second handling into a no-op. A message that cannot be decoded,
or whose deadline has passed on the platform clock, is rejected: the broker dead-letters it.

Per-key order holds for one consumer per queue. Competing consumers trade it for throughput: two
messages of one key may be handled by two consumers at once, which suits independent messages
(one notification per recipient), not per-entity streams. A queue keeps no message once
acknowledged, so there is no replay from zero: ``rewind`` refuses. ``position`` counts the
messages this consumer acknowledged since it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import NamedTuple

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from junction.clock import Clock, RealClock
from junction.events import Envelope
from junction.rabbitmq.config import RabbitConfig
from junction.rabbitmq.messages import decode, expired
from junction.rabbitmq.queues import Subscriber, declare_queue
from junction.signal import Signal
from junction.sources import Source

log = structlog.get_logger()


class ReplayUnsupported(RuntimeError):
    """A queue cannot deliver again what was acknowledged: rebuild such projections from a log instead."""


class Delivery(NamedTuple):
    """A message the broker handed to this consumer, tagged with the connection it came on."""

    connection: int  # delivery tags mean something only on their own channel
    message: AbstractIncomingMessage
    envelope: Envelope


class RabbitSource(Source):
    """One subscription of ``subscriber.service``: a consumer on its queue."""

    via = "rabbitmq"

    def __init__(self, config: RabbitConfig, subscriber: Subscriber, clock: Clock | None = None,
                 timeout: float = 10.0) -> None:
        self.config = config
        self.subscriber = subscriber
        self.queue_name = config.queue(subscriber.service, subscriber.subscription)
        self.clock = clock or RealClock()  # deadlines are in platform time
        self.timeout = timeout  # bound on broker calls, so an outage never blocks the worker for long
        self.position = 0
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._generation = 0  # which connection is current
        self._buffer: deque[Delivery] = deque()  # delivered by the broker, not yet fetched by the worker
        self._delivered: deque[Delivery] = deque()  # fetched, not yet acknowledged by the worker
        self._unacked: Delivery | None = None  # the last message the worker dealt with, not yet acked
        self._pending = 0  # how many the next ack(multiple=True) covers
        self._arrived = Signal()  # a delivery came, or the connection went
        self._opened = False
        self._retry_at = 0.0
        self._backoff = 0.05
        self._lag = 0

    # -- life cycle ----------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (waiting out a broker that is not there yet), declare the queue and start consuming."""
        self._opened = True
        while not await self._reconnect():
            await asyncio.sleep(max(0.0, self._retry_at - asyncio.get_running_loop().time()))

    async def close(self) -> None:
        """Drop the connection: the broker delivers what was not acknowledged again."""
        connection, self._connection, self._channel, self._queue = self._connection, None, None, None
        self._opened = False
        self._forget()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    @property
    def connected(self) -> bool:
        """True while the consumer's channel is open."""
        return self._channel is not None and not self._channel.is_closed

    # -- delivery ------------------------------------------------------------------------------------
    async def fetch(self, limit: int) -> list[Envelope]:
        if not self.connected:
            await self._reconnect()
        batch: list[Envelope] = []
        while self._buffer and len(batch) < limit:
            delivery = self._buffer.popleft()
            if delivery.connection == self._generation:
                self._delivered.append(delivery)
                batch.append(delivery.envelope)
        return batch

    async def wait(self, timeout: float) -> None:
        if self._buffer:
            return
        if not self.connected:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(min(timeout, max(0.0, self._retry_at - loop.time())))
            return
        await self._arrived.wait(timeout)

    async def acknowledge(self, envelope: Envelope) -> None:
        while self._delivered:  # the worker acknowledges in delivery order
            delivery = self._delivered.popleft()
            if delivery.connection == self._generation:  # an older connection's messages come again anyway
                self._unacked = delivery
                self._pending += 1
            if delivery.envelope is envelope:
                break
        self.position += 1
        if self._pending >= self.config.ack_every:
            await self.flush()

    async def flush(self) -> None:
        """Acknowledge, in one ack, everything the worker has dealt with."""
        delivery, self._unacked, self._pending = self._unacked, None, 0
        if delivery is None or delivery.connection != self._generation or not self.connected:
            return  # the connection is gone: the broker requeued those messages, the inbox will skip them
        try:
            await delivery.message.ack(multiple=True)
        except Exception as error:  # the channel broke meanwhile: the same as above
            log.warning("ack failed", queue=self.queue_name, error=repr(error))

    # -- progress ------------------------------------------------------------------------------------
    async def lag(self) -> int:
        """Ready messages in the queue plus those delivered here and not yet fetched (0: caught up)."""
        queue, channel = self._queue, self._channel
        if queue is None or channel is None or not self.connected:
            return max(self._lag, 1) if self._opened else self._lag  # away: not known to be caught up
        try:
            async with asyncio.timeout(self.timeout):
                ready = (await queue.declare()).message_count or 0
                # A message counted as not ready may still be on its way to this consumer. The channel
                # sends a delivery before answering any later command, so one more round trip on it
                # makes sure such a message has arrived before the buffer is counted.
                await channel.set_qos(prefetch_count=self.config.prefetch)
            for _ in range(3):  # the client hands each delivery over in tasks of its own
                await asyncio.sleep(0)
        except Exception as error:
            log.debug("lag unknown", queue=self.queue_name, error=repr(error))
            return max(self._lag, 1)
        self._lag = ready + sum(1 for d in self._buffer if d.connection == self._generation)
        return self._lag

    async def rewind(self) -> int:
        """Refuse: a queue does not keep acknowledged messages, so delivery cannot start again from the first."""
        raise ReplayUnsupported(f"{self.queue_name} is a RabbitMQ queue: it keeps no consumed message to replay")

    # -- internals -----------------------------------------------------------------------------------
    async def _reconnect(self) -> bool:
        """Try once (when the backoff allows) to connect and consume; True when consuming."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._retry_at:
            return False
        await self._drop()
        try:
            async with asyncio.timeout(self.timeout):
                await self._consume()
        except Exception as error:
            log.warning("rabbitmq not reachable", queue=self.queue_name, error=repr(error), retry_in=self._backoff)
            await self._drop()
            self._retry_at = loop.time() + self._backoff
            self._backoff = min(self._backoff * 2, 2.0)
            return False
        self._backoff = 0.05
        return True

    async def _consume(self) -> None:
        name = f"{self.subscriber.service}/{self.subscriber.subscription}"
        self._connection = await aio_pika.connect(self.config.url, timeout=self.timeout,
                                                  client_properties={"connection_name": name})
        self._connection.close_callbacks.add(lambda *_: self._arrived.notify())  # a waiting worker reconnects now
        self._channel = await self._connection.channel(publisher_confirms=False)
        await self._channel.set_qos(prefetch_count=self.config.prefetch)
        self._queue = await declare_queue(self._channel, self.config, self.subscriber)
        self._generation += 1
        generation = self._generation

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._on_message(generation, message)

        await self._queue.consume(on_message)

    async def _drop(self) -> None:
        connection, self._connection, self._channel, self._queue = self._connection, None, None, None
        self._forget()
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _forget(self) -> None:
        """Drop what came on the old connection: the broker delivers it again."""
        self._buffer.clear()
        self._delivered.clear()
        self._unacked, self._pending = None, 0
        self._arrived.notify()  # a waiting worker looks again (and reconnects)

    async def _on_message(self, generation: int, message: AbstractIncomingMessage) -> None:
        try:
            envelope = decode(message.body)
        except (ValueError, KeyError, TypeError) as error:
            log.error("undecodable message dead-lettered", queue=self.queue_name, message_id=message.message_id,
                      error=repr(error))
            await message.reject(requeue=False)
            return
        if expired(envelope, self.clock):  # never handled late, whatever the broker's own TTL said
            log.info("expired message dead-lettered", queue=self.queue_name, event_id=envelope.id,
                     event_type=envelope.type)
            await message.reject(requeue=False)
            return
        self._buffer.append(Delivery(generation, message, envelope))
        self._arrived.notify()
