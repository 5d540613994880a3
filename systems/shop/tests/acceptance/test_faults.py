"""Faults of the distributed topology: Kafka down while orders are placed.

Every order placed meanwhile is answered 201 (the order and its event commit in the order service's
store, the log is the outbox); once the broker is back, the relay publishes, the notification service
consumes, and every order is e-mailed exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from junction.kafka.broker import KafkaBroker
from junction.kafka.relay import CHECKPOINT
from junction.mail import MailSink
from junction.testing import topology
from shop.tests.conftest import Shop, open_shop

ORDERS = 10


@pytest.fixture(params=["distributed"])
async def shop(request: pytest.FixtureRequest, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Shop]:
    """The shop, distributed only (embedded has no broker to lose)."""
    async with topology(request, "shop") as distributed, open_shop(tmp_path / "data", mail_sink,
                                                                    distributed) as running_shop:
        yield running_shop


async def test_orders_placed_while_kafka_is_down_are_each_mailed_once_when_it_is_back(
        shop: Shop, kafka_broker: KafkaBroker) -> None:
    await shop.create("SKU001", 100)
    assert (await shop.order("SKU001", 1, user="before"))[0] == 201
    await shop.settle()
    await asyncio.to_thread(kafka_broker.stop)  # in a thread: the runtime keeps running meanwhile
    try:
        for _ in range(ORDERS):
            assert (await shop.order("SKU001", 1))[0] == 201
        await asyncio.sleep(0.5)
        log = shop.runtime.service("order").store
        assert await log.checkpoint(CHECKPOINT) < await log.head()  # committed, not yet on Kafka
        assert len(await shop.mails()) == 1
    finally:
        # on this thread: an attached broker dies with the thread that started it, and the session's other
        # tests still need it (the runtime only pauses for the start)
        kafka_broker.start(attached=True)
    numbers = sorted(o["orderNumber"] for o in await shop.orders("user123"))
    deadline = time.monotonic() + 90
    while len(mails := await shop.mails()) < ORDERS + 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    await shop.settle()
    mailed = sorted(m["Subject"].split()[4] for m in await shop.mails())
    assert len(mailed) == ORDERS + 1 and len(set(mailed)) == ORDERS + 1
    assert set(numbers) <= set(mailed)
    assert len(mails) == ORDERS + 1
