"""order: the placement saga (gRPC decrement with a deadline, order and event in one commit, compensation)."""

from __future__ import annotations

import re
import uuid

import pytest

from junction.grpc import GrpcClient
from shop.services import order
from shop.tests.conftest import Shop

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


async def test_a_placed_order_is_stored_with_its_event_and_the_stock_taken(shop: Shop) -> None:
    await shop.create("SKU001", 100)
    assert await shop.order("SKU001", 2) == (201, "Order placement completed successfully")
    assert await shop.stock("SKU001") == [98]
    (stored,) = await shop.orders("user123")
    assert UUID4.match(stored["orderNumber"])
    assert list(stored) == ["orderNumber", "skuCode", "quantity", "userId", "price"]  # the reference's OrderDTO
    assert stored | {"orderNumber": "-"} == {"orderNumber": "-", "skuCode": "SKU001", "quantity": 2,
                                             "userId": "user123", "price": 59.98}
    (event,) = await shop.placed()
    assert (event.order_number, event.email, event.first_name, event.last_name) == (
        stored["orderNumber"], "user@example.com", "John", "Doe")


async def test_price_is_price_times_quantity_exact_to_the_cent(shop: Shop) -> None:
    await shop.create("SKU001", 1000)
    for price, quantity in ((30, 15), (0.1, 3), (19.995, 1), (12.5, 1)):
        assert (await shop.order("SKU001", quantity, price=price, user="prices"))[0] == 201
    assert [o["price"] for o in await shop.orders("prices")] == [450, 0.3, 20.0, 12.5]
    _, text = await shop.request("GET", "/api/order/prices")
    assert '"price":450}' in text and '"price":0.30}' in text and '"price":20}' in text and '"price":12.50}' in text


@pytest.mark.parametrize(("sku", "quantity"), [("SKU001", 11), ("NOPE", 1), ("SKU001", 0), ("SKU001", -3), ("", 1)])
async def test_a_refused_order_changes_nothing(shop: Shop, sku: str, quantity: int) -> None:
    await shop.create("SKU001", 10)
    assert await shop.order(sku, quantity) == (409, "Order placement failed")
    assert await shop.stock("SKU001") == [10]
    assert await shop.orders("user123") == []
    assert await shop.placed() == []


async def test_inventory_unreachable_is_a_409_and_nothing_is_stored(shop: Shop) -> None:
    await shop.create("SKU001", 10)
    await shop.runtime.grpc.stop()  # inventory's gRPC server is gone; its REST API still answers
    assert await shop.order("SKU001", 1) == (409, "Order placement failed")
    assert await shop.orders("user123") == [] and await shop.placed() == []
    assert await shop.stock("SKU001") == [10]


async def test_a_slow_inventory_answers_409_after_the_deadline(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    await shop.create("SKU001", 10)
    hanging = GrpcClient("inventory", lambda channel: _Hangs(), deadline=0.05)
    monkeypatch.setattr(order, "inventory", hanging)
    assert await shop.order("SKU001", 1) == (409, "Order placement failed")
    assert await shop.orders("user123") == []


class _Hangs:
    """A stub whose calls honour the deadline the client gives them, and never answer before it."""

    def __getattr__(self, name: str) -> object:
        import asyncio

        import grpc

        async def call(request: object, timeout: float) -> object:
            await asyncio.sleep(timeout)
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata())

        return call


async def test_when_storing_the_order_fails_the_stock_is_given_back(shop: Shop,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Invariant 2 (compensation): the second order gets the first one's number, so storing it clashes on the
    orders table's primary key in the real store, after its stock was taken; the saga gives the stock back."""
    await shop.create("SKU001", 10)
    same = uuid.uuid4()
    monkeypatch.setattr(order.uuid, "uuid4", lambda: same)
    assert (await shop.order("SKU001", 2))[0] == 201
    assert await shop.order("SKU001", 3) == (409, "Order placement failed")
    assert await shop.stock("SKU001") == [8]  # 10 - 2: the 3 taken for the clashing order are back
    assert [o["quantity"] for o in await shop.orders("user123")] == [2]
    assert len(await shop.placed()) == 1
