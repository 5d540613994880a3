"""The spec's invariants through the gateway, on both topologies.

1. Stock never goes negative: of N concurrent orders of s against q in stock, exactly ⌊q/s⌋ succeed.
2. A failed order leaves stock unchanged and stores nothing; stock taken for an order whose storing then
   fails is given back (compensation).
3. Exactly one ``OrderPlaced`` event and one e-mail per 201, none for a 409.
4. SKU codes are unique (a racing second creator gets 409).
5. ``GET /api/inventory`` answers a list as long as the request.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shop.services import order
from shop.tests.acceptance.test_scenarios import order_placed_records
from shop.tests.conftest import Shop

STOCK, SIZE, ORDERS = 100, 7, 50


async def test_concurrent_orders_never_take_stock_below_zero_and_each_success_is_announced_once(shop: Shop) -> None:
    await shop.create("SKU001", STOCK)
    answers = await asyncio.gather(*(shop.order("SKU001", SIZE, user=f"u{n}") for n in range(ORDERS)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * (STOCK // SIZE) + [409] * (ORDERS - STOCK // SIZE)
    assert await shop.stock("SKU001") == [STOCK - SIZE * (STOCK // SIZE)]
    await shop.settle()
    numbers = sorted(o["orderNumber"] for orders in [await shop.orders(f"u{n}") for n in range(ORDERS)]
                     for o in orders)
    assert len(numbers) == STOCK // SIZE
    assert sorted(e.order_number for e in await shop.placed()) == numbers
    assert sorted(m["Subject"].split()[4] for m in await shop.mails()) == numbers
    if shop.distributed is not None:
        assert sorted(r["orderNumber"] for r in await order_placed_records(shop)) == numbers


async def test_stock_taken_for_an_order_that_cannot_be_stored_is_given_back(shop: Shop,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The second order gets the first one's number, so storing it clashes on the orders table's primary key
    in the real store (SQLite or PostgreSQL), after inventory took its stock over gRPC."""
    await shop.create("SKU001", 10)
    same = uuid.uuid4()
    monkeypatch.setattr(order.uuid, "uuid4", lambda: same)
    assert (await shop.order("SKU001", 2))[0] == 201
    assert await shop.order("SKU001", 3) == (409, "Order placement failed")
    assert await shop.stock("SKU001") == [8]
    await shop.settle()
    assert len(await shop.orders("user123")) == 1
    assert len(await shop.placed()) == 1 and len(await shop.mails()) == 1


async def test_skus_are_unique_and_reads_answer_every_sku_asked(shop: Shop) -> None:
    answers = await asyncio.gather(*(shop.create("SKU001", n) for n in range(1, 6)))
    assert sorted(status for status, _ in answers) == [201, 409, 409, 409, 409]
    asked = ["SKU001", "NOPE", "SKU001", "", "x" * 300]
    levels = await shop.stock(*asked)
    assert len(levels) == len(asked) and levels[1:] == [None, levels[0], None, None]
