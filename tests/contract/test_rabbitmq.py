"""What RabbitMQ adds to the transport contract: queue semantics, on a real broker.

A message whose time to live runs out waits in the dead-letter queue for an operator instead of
being handled late; several consumers share a queue and each message is handled once; a relay
counts a publication only once the broker confirmed it. The contract every transport passes is in
``test_transport.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from sqlalchemy import Column, String, select

from junction.clock import Clock, RealClock, VirtualClock
from junction.events import Event
from junction.infra.rabbitmq import LocalRabbit
from junction.rabbitmq import RabbitConfig, RabbitSource, ReplayUnsupported, Subscriber, rabbit_sources, start_relays
from junction.rabbitmq.queues import depths
from junction.rabbitmq.relay import CHECKPOINT
from junction.runtime import Runtime, System
from junction.service import Service
from junction.uow import UnitOfWork
from tests.contract.test_transport import MAILS, RabbitHarness, place, sent, until


class Reminder(Event):
    """A message with a deadline: worthless once ``expires_at`` has passed."""

    event_name = "RabbitTestReminder"
    note: str
    expires_at: datetime


notices = Service("notices", worker=21)
inbox = Service("inbox", worker=22)
seen = inbox.table("seen", Column("note", String, primary_key=True))


@inbox.on("notices", Reminder)
async def remember(event: Reminder, uow: UnitOfWork) -> None:
    uow.execute(seen.insert().values(note=event.note))


def reminders() -> System:
    """``notices`` records reminders; ``inbox`` handles them from its queue."""
    return System("reminders", [notices, inbox])


@pytest.fixture
def rabbit(rabbitmq_broker: LocalRabbit) -> RabbitHarness:
    """The toy system's harness: exchanges and queues of this test only, on the session's broker."""
    return RabbitHarness(rabbitmq_broker)


@pytest.fixture
def config(rabbit: RabbitHarness) -> RabbitConfig:
    """The reminders system's names, as isolated as the harness's."""
    return dataclasses.replace(rabbit.config, system="reminders")


@pytest.fixture
async def channel(rabbitmq_broker: LocalRabbit) -> AsyncIterator[AbstractChannel]:
    """A plain channel, as an operator's tool would open one."""
    connection = await aio_pika.connect(rabbitmq_broker.url)
    try:
        yield await connection.channel()
    finally:
        await connection.close()


async def start_reminders(config: RabbitConfig, data: Path, only: str, clock: Clock) -> Runtime:
    """A started runtime of one service of the reminders system, with its relay."""
    rt = Runtime(reminders(), data, clock=clock, poll_interval=0.01, only=[only], source_factory=rabbit_sources(config))
    await rt.start()
    start_relays(rt, config)
    return rt


async def remind(rt: Runtime, note: str, expires_at: datetime) -> None:
    uow = rt.service("notices").uow()
    uow.append("reminders", Reminder(note=note, expires_at=expires_at), key=note)
    await uow.commit()


async def notes_seen(rt: Runtime) -> list[str]:
    return [row["note"] for row in await rt.service("inbox").uow().fetch_all(select(seen).order_by(seen.c.note))]


async def next_message(channel: AbstractChannel, queue_name: str, timeout: float = 10.0) -> AbstractIncomingMessage:
    """The next message of ``queue_name`` (taken off it), waiting for one to arrive."""
    queue = await channel.declare_queue(queue_name, passive=True)
    deadline = asyncio.get_running_loop().time() + timeout
    while (message := await queue.get(fail=False)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"nothing arrived in {queue_name}"
        await asyncio.sleep(0.05)
    await message.ack()
    return message


async def dead_letter(channel: AbstractChannel, queue_name: str) -> tuple[str, str]:
    """The note of the next dead letter in ``queue_name`` and why it died (its first ``x-death`` reason)."""
    message = await next_message(channel, queue_name)
    deaths: Any = message.headers["x-death"]
    return json.loads(message.body)["data"]["note"], str(deaths[0]["reason"])


# -- time to live and dead letters --------------------------------------------------------------------


async def test_a_message_that_expires_in_its_queue_is_dead_lettered_and_never_handled(
        config: RabbitConfig, channel: AbstractChannel, tmp_path: Path) -> None:
    clock = RealClock()
    publisher = await start_reminders(config, tmp_path, "notices", clock)
    try:
        await remind(publisher, "soon", clock.now() + timedelta(seconds=0.3))  # TTL 300 ms, nobody consuming
        await remind(publisher, "later", clock.now() + timedelta(hours=1))
        await publisher.settle()  # confirmed: both wait in the inbox's queue
        dead = await dead_letter(channel, config.dead_letter_queue("inbox", "handlers:notices"))
        assert dead == ("soon", "expired")  # the broker expired it, and an operator can see it
    finally:
        await publisher.stop()
    consumer = await start_reminders(config, tmp_path, "inbox", clock)
    try:
        await consumer.settle()
        assert await notes_seen(consumer) == ["later"]
    finally:
        await consumer.stop()


async def test_a_message_late_by_the_platform_clock_is_dead_lettered_not_handled(
        config: RabbitConfig, channel: AbstractChannel, tmp_path: Path) -> None:
    start = VirtualClock()
    publisher = await start_reminders(config, tmp_path, "notices", start)
    try:
        await remind(publisher, "stale", start.now() + timedelta(hours=1))  # a wall-clock TTL of an hour
        await remind(publisher, "fresh", start.now() + timedelta(hours=3))
        await publisher.settle()
    finally:
        await publisher.stop()
    two_hours_later = VirtualClock(start.now() + timedelta(hours=2))  # platform time ran ahead of the wall clock
    consumer = await start_reminders(config, tmp_path, "inbox", two_hours_later)
    try:
        await consumer.settle()
        assert await notes_seen(consumer) == ["fresh"]
        dead = await dead_letter(channel, config.dead_letter_queue("inbox", "handlers:notices"))
        assert dead == ("stale", "rejected")
    finally:
        await consumer.stop()


async def test_an_undecodable_message_is_dead_lettered(
        config: RabbitConfig, channel: AbstractChannel, tmp_path: Path) -> None:
    consumer = await start_reminders(config, tmp_path, "inbox", RealClock())
    try:
        await consumer.settle()  # consuming: the exchange and queues exist
        exchange = await channel.get_exchange(config.exchange("notices"))
        await exchange.publish(aio_pika.Message(b'{"not": "an envelope"}'), routing_key=Reminder.event_name)
        message = await next_message(channel, config.dead_letter_queue("inbox", "handlers:notices"))
        assert message.body == b'{"not": "an envelope"}'
        await consumer.settle()
        assert await notes_seen(consumer) == []
    finally:
        await consumer.stop()


# -- competing consumers ------------------------------------------------------------------------------


async def test_competing_consumers_share_a_queue_and_each_message_is_handled_once(
        rabbit: RabbitHarness, tmp_path: Path) -> None:
    rabbit.config = dataclasses.replace(rabbit.config, prefetch=4, ack_every=2)  # spread a burst over both
    orders = await rabbit.start(rabbit.runtime(tmp_path, only=["orders"]))
    first = await rabbit.start(rabbit.runtime(tmp_path, only=["mailer"]))
    second = await rabbit.start(rabbit.runtime(tmp_path, only=["mailer"]))
    try:
        consumers = [rt.service("mailer").subscriptions[MAILS].source for rt in (first, second)]
        await until(lambda: all(isinstance(c, RabbitSource) and c.connected for c in consumers))  # both consume
        customers = [f"c{n}" for n in range(6)]
        for seq in range(10):
            for customer in customers:
                await place(orders, customer, seq)
        await orders.settle()
        await first.settle()
        await second.settle()
        mails = await sent(second)
        assert Counter(mails) == Counter((c, s) for c in customers for s in range(10))  # each exactly once
        handled = [rt.service("mailer").subscriptions[MAILS].handled for rt in (first, second)]
        assert all(handled) and sum(handled) == 60  # both consumers worked, none handled a message twice
    finally:
        for rt in (orders, first, second):
            await rt.stop()


# -- publisher confirms -------------------------------------------------------------------------------


async def test_a_publication_counts_only_once_the_broker_confirmed_it(
        rabbit: RabbitHarness, rabbitmq_broker: LocalRabbit, tmp_path: Path) -> None:
    rt = await rabbit.start(rabbit.runtime(tmp_path))
    orders = rt.service("orders").store
    try:
        await place(rt, "ann", 1)
        await rt.settle()
        confirmed = await orders.checkpoint(CHECKPOINT)
        # A memory alarm: the broker stops reading what publishers send, so it confirms nothing.
        rabbitmq_broker.ctl("set_vm_memory_high_watermark", "0")
        try:
            await place(rt, "ann", 2)  # committed, and the relay publishes it
            await asyncio.sleep(1.0)
            assert await orders.checkpoint(CHECKPOINT) == confirmed  # not confirmed, not counted
            assert rabbit.relays[0].published == 1 and await rabbit.relays[0].lag() == 1
            assert await sent(rt) == [("ann", 1)]  # nor delivered: the broker did not take it
        finally:
            rabbitmq_broker.ctl("set_vm_memory_high_watermark", "0.4")
        await rt.settle(timeout=60)
        assert await orders.checkpoint(CHECKPOINT) > confirmed
        assert await sent(rt) == [("ann", 1), ("ann", 2)]
    finally:
        await rt.stop()


# -- what a queue cannot do ---------------------------------------------------------------------------


async def test_a_queue_refuses_to_replay_from_zero() -> None:
    source = RabbitSource(RabbitConfig("toy"), Subscriber("mailer", MAILS, "orders", frozenset()))
    with pytest.raises(ReplayUnsupported, match="keeps no consumed message"):
        await source.rewind()


def test_a_projection_cannot_be_fed_by_a_queue(tmp_path: Path) -> None:
    ledger = Service("ledger", worker=23)
    totals = ledger.projection("totals", tables=[ledger.table("totals", Column("note", String, primary_key=True))])

    @totals.on("notices", Reminder)
    async def count(event: Reminder, uow: UnitOfWork) -> None: ...

    sources = rabbit_sources(RabbitConfig("ledgers"))
    rt = Runtime(System("ledgers", [notices, ledger]), tmp_path, only=["ledger"], source_factory=sources)
    with pytest.raises(ReplayUnsupported, match="projection 'totals' needs a source that can replay"):
        sources(rt.service("ledger"), ledger.subscriptions["projection:totals:notices"])


async def test_depths_count_what_waits_in_a_queue_and_its_dead_letters(config: RabbitConfig, tmp_path: Path) -> None:
    """What `junction status` shows of a queue subscription: messages ready, dead-lettered, or no queue at all."""
    clock = RealClock()
    publisher = await start_reminders(config, tmp_path, "notices", clock)
    try:
        await remind(publisher, "a", clock.now() + timedelta(hours=1))
        await remind(publisher, "b", clock.now() + timedelta(hours=1))
        await publisher.settle()  # confirmed: both wait in the inbox's queue, nobody consuming
    finally:
        await publisher.stop()
    queue, dead = config.queue("inbox", "handlers:notices"), config.dead_letter_queue("inbox", "handlers:notices")
    assert await depths(config, [queue, dead, config.queue("inbox", "nothing")]) == {
        queue: 2, dead: 0, config.queue("inbox", "nothing"): None}
