"""The spec's acceptance scenarios C1-C7, C9 and C10, black box through the gateway, on both topologies.

C4 reads the mail from a real SMTP sink the test started and, distributed, the Avro record from the
``order-placed`` topic with a plain Kafka consumer and the reference schema, as a Java consumer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from fastavro import parse_schema, schemaless_reader
from starlette.responses import PlainTextResponse

from shop.contracts import CONTRACTS
from shop.tests.conftest import Shop

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PLACED, FAILED = (201, "Order placement completed successfully"), (409, "Order placement failed")
UNAVAILABLE = (503, "Service Unavailable, please try again later")


async def order_placed_records(shop: Shop) -> list[dict[str, Any]]:
    """Every record on the ``order-placed`` topic, decoded with the reference's .avsc alone."""
    assert shop.distributed is not None
    schema = parse_schema(json.loads((CONTRACTS / "order-placed.avsc").read_text()))
    partition = TopicPartition(shop.distributed.kafka.export_topic("order-placed"), 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=shop.distributed.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        records: list[dict[str, Any]] = []
        while await consumer.position(partition) < end:
            for batch in (await consumer.getmany(partition, timeout_ms=1000)).values():
                records.extend(cast(dict[str, Any], schemaless_reader(io.BytesIO(r.value or b""), schema, None))
                               for r in batch)
        return records
    finally:
        await consumer.stop()


async def placed_order(shop: Shop) -> str:
    """C1 and C3's state: SKU001 = 100, then user123's order of 2 (stock 98); the order's number."""
    assert await shop.create("SKU001", 100) == (201, "Inventory created successfully")
    assert await shop.order("SKU001", 2) == PLACED
    (order,) = await shop.orders("user123")
    return str(order["orderNumber"])


async def test_c1_c2_create_and_read_inventory(shop: Shop) -> None:
    assert await shop.create("SKU001", 100) == (201, "Inventory created successfully")
    assert await shop.create("SKU001", 100) == (409, "Inventory creation failed")
    assert await shop.create("SKU002", 50) == (201, "Inventory created successfully")
    assert await shop.request("GET", "/api/inventory", ["SKU001", "SKU002", "NOPE"]) == (200, "[100,50,null]")


async def test_c3_c4_an_order_is_stored_announced_and_mailed_once(shop: Shop) -> None:
    number = await placed_order(shop)
    assert await shop.stock("SKU001") == [98]
    status, text = await shop.request("GET", "/api/order/user123")
    assert status == 200 and UUID4.match(number)
    assert text == f'[{{"orderNumber":"{number}","skuCode":"SKU001","quantity":2,"userId":"user123","price":59.98}}]'
    await shop.settle()
    (mail,) = await shop.mails()
    assert [to["Address"] for to in mail["To"]] == ["user@example.com"]
    assert mail["Subject"] == f"Your Order with OrderNumber {number} is placed successfully"
    assert mail["Text"].startswith("Hi John,Doe")
    if shop.distributed is not None:
        assert await order_placed_records(shop) == [
            {"orderNumber": number, "email": "user@example.com", "firstName": "John", "lastName": "Doe"}]


async def test_c5_c6_c7_refused_orders_change_nothing_and_stock_runs_out_exactly(shop: Shop) -> None:
    await placed_order(shop)
    assert await shop.order("SKU001", 200) == FAILED  # C5
    for sku, quantity in (("NOPE", 1), ("SKU001", 0), ("SKU001", -3)):  # C6
        assert await shop.order(sku, quantity) == FAILED
    assert await shop.stock("SKU001") == [98] and len(await shop.orders("user123")) == 1
    await shop.settle()
    assert len(await shop.placed()) == 1 and len(await shop.mails()) == 1
    assert await shop.order("SKU001", 98) == PLACED  # C7
    assert await shop.stock("SKU001") == [0]
    assert await shop.order("SKU001", 1) == FAILED
    await shop.settle()
    assert len(await shop.placed()) == 2 and len(await shop.mails()) == 2
    if shop.distributed is not None:
        assert len(await order_placed_records(shop)) == 2


async def test_c9_unknown_user_has_no_orders(shop: Shop) -> None:
    assert await shop.request("GET", "/api/order/nobody") == (200, "[]")


class Down:
    """An order service that cannot serve: every call is counted and answered 503 (no instance behind it)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await PlainTextResponse("no instance", status_code=503)(scope, receive, send)


@contextlib.asynccontextmanager
async def order_service(shop: Shop, app: Any) -> AsyncIterator[None]:
    """The gateway reaches the order service as ``app`` meanwhile."""
    transport = shop.runtime.transport
    transport.add_app("order", app)
    try:
        yield
    finally:
        transport.add_app("order", shop.runtime.service("order").app)


async def through_time(shop: Shop, call: Callable[[], Any]) -> tuple[tuple[int, str], float]:
    """Run a gateway call while moving platform time (its backoffs wait on it); its answer and the time taken."""
    started = shop.clock.timestamp()
    task = asyncio.ensure_future(call())
    for _ in range(100):
        if task.done():
            break
        await shop.clock.advance(0.01)
    answer: tuple[int, str] = await task
    return answer, shop.clock.timestamp() - started


async def test_c10_retry_fallback_and_circuit_breaker(shop: Shop) -> None:
    await placed_order(shop)
    down = Down()
    async with order_service(shop, down):
        answer, waited = await through_time(shop, lambda: shop.request("GET", "/api/order/user123"))
        assert answer == UNAVAILABLE
        assert down.calls == 4  # one call, 3 retries
        assert 0.35 * 0.75 <= waited <= 0.35 * 1.25 + 0.02  # 50 + 100 + 200 ms, jitter 0.25
        assert await shop.order("SKU001", 1) == UNAVAILABLE  # the fallback answers every method
        assert down.calls == 5  # a POST is not retried
        # the window now holds 4 calls: placed_order's two (succeeded) and these two (failed); 6 more failures
        # make 10 calls, 80 % failed: the circuit opens
        for _ in range(6):
            assert await shop.order("SKU001", 1) == UNAVAILABLE
        assert down.calls == 11
        # open: answered at once, without an attempt (a retried call would wait for platform time forever here)
        assert await asyncio.wait_for(shop.request("GET", "/api/order/user123"), 5) == UNAVAILABLE
        assert down.calls == 11
    assert await shop.request("GET", "/api/order/user123") == UNAVAILABLE  # back, but the circuit is still open
    await shop.clock.advance(5.0)
    for _ in range(3):  # half open: 3 trial calls succeed, the circuit closes
        status, _ = await shop.request("GET", "/api/order/user123")
        assert status == 200
    assert (await shop.order("SKU001", 1))[0] == 201
    assert await shop.stock("SKU001") == [97]  # nothing the refused calls sent reached the service


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_c10_an_unreachable_service_gets_the_fallback(shop: Shop) -> None:
    shop.runtime.transport.add_url("order", f"http://127.0.0.1:{_closed_port()}/order")
    try:
        answer, _ = await through_time(shop, lambda: shop.request("GET", "/api/order/user123"))
        assert answer == UNAVAILABLE
        assert await shop.order("SKU001", 1) == UNAVAILABLE
    finally:
        shop.runtime.transport.add_app("order", shop.runtime.service("order").app)

