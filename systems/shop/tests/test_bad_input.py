"""Bad input through the gateway: each case answers its documented status and text, never a 500, and
changes nothing (stock, orders, events, mails)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from junction.mail.testing import mail_sink_in
from shop.tests.conftest import USER, Shop, open_shop, order_body

pytestmark = pytest.mark.asyncio(loop_scope="module")

ORDER_FAILED = (409, "Order placement failed")
CREATION_FAILED = (409, "Inventory creation failed")
NOT_JSON = (400, "invalid request body")
TOO_LARGE = (413, "request body too large")


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    """``body`` with the field at ``path`` removed."""
    copy = json.loads(json.dumps(body))
    target = copy
    for name in path[:-1]:
        target = target[name]
    del target[path[-1]]
    return copy


GOOD = order_body("SKU001", 1)
ORDERS: list[tuple[str, Any, tuple[int, str]]] = [
    ("missing skuCode", without(GOOD, "skuCode"), ORDER_FAILED),
    ("missing price", without(GOOD, "price"), ORDER_FAILED),
    ("missing quantity", without(GOOD, "quantity"), ORDER_FAILED),
    ("missing userDetails", without(GOOD, "userDetails"), ORDER_FAILED),
    ("missing email", without(GOOD, "userDetails", "email"), ORDER_FAILED),
    ("missing userId", without(GOOD, "userDetails", "userId"), ORDER_FAILED),
    ("price null", {**GOOD, "price": None}, ORDER_FAILED),
    ("price a string", {**GOOD, "price": "29.99"}, ORDER_FAILED),
    ("price negative", {**GOOD, "price": -1}, ORDER_FAILED),
    ("price beyond any store", {**GOOD, "price": 1e300}, ORDER_FAILED),
    ("quantity a string", {**GOOD, "quantity": "1"}, ORDER_FAILED),
    ("quantity a fraction", {**GOOD, "quantity": 1.5}, ORDER_FAILED),
    ("quantity a boolean", {**GOOD, "quantity": True}, ORDER_FAILED),
    ("quantity zero", {**GOOD, "quantity": 0}, ORDER_FAILED),
    ("quantity negative", {**GOOD, "quantity": -3}, ORDER_FAILED),
    ("quantity beyond int32", {**GOOD, "quantity": 2**31}, ORDER_FAILED),
    ("skuCode blank", {**GOOD, "skuCode": "  "}, ORDER_FAILED),
    ("skuCode empty", {**GOOD, "skuCode": ""}, ORDER_FAILED),
    ("skuCode a number", {**GOOD, "skuCode": 1}, ORDER_FAILED),
    ("skuCode unknown", {**GOOD, "skuCode": "NOPE"}, ORDER_FAILED),
    ("userDetails a string", {**GOOD, "userDetails": "user123"}, ORDER_FAILED),
    ("userId blank", {**GOOD, "userDetails": {**USER, "userId": " "}}, ORDER_FAILED),
    ("a JSON array", [GOOD], ORDER_FAILED),
    ("JSON null", None, ORDER_FAILED),
    ("not JSON", b'{"skuCode":', NOT_JSON),
    ("huge", b'{"skuCode":"' + b"x" * (2 << 20) + b'"}', TOO_LARGE),
]
INVENTORIES: list[tuple[str, Any, tuple[int, str]]] = [
    ("missing skuCode", {"quantity": 5}, CREATION_FAILED),
    ("missing quantity", {"skuCode": "SKU-NEW"}, CREATION_FAILED),
    ("quantity mistyped", {"skuCode": "SKU-NEW", "quantity": "many"}, CREATION_FAILED),
    ("quantity null", {"skuCode": "SKU-NEW", "quantity": None}, CREATION_FAILED),
    ("quantity zero", {"skuCode": "SKU-NEW", "quantity": 0}, CREATION_FAILED),
    ("quantity negative", {"skuCode": "SKU-NEW", "quantity": -1}, CREATION_FAILED),
    ("skuCode blank", {"skuCode": " ", "quantity": 5}, CREATION_FAILED),
    ("skuCode a number", {"skuCode": 7, "quantity": 5}, CREATION_FAILED),
    ("not JSON", b"not json", NOT_JSON),
    ("huge", b"[" + b"1," * (1 << 20) + b"1]", TOO_LARGE),
]
READS: list[tuple[str, Any, tuple[int, str]]] = [
    ("no body", b"", NOT_JSON),
    ("an object", {"skuCode": "SKU001"}, NOT_JSON),
    ("numbers", [1, 2], NOT_JSON),
    ("not JSON", b"[SKU001]", NOT_JSON),
]


async def _send(shop: Shop, method: str, path: str, body: Any) -> tuple[int, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await shop.request(method, path, raw=raw)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stocked(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """One shop with SKU001 = 10 for the whole table: bad input changes nothing, so each case also checks
    that none before it did."""
    directory = tmp_path_factory.mktemp("bad-input")
    with pytest.MonkeyPatch.context() as patch:
        async with mail_sink_in(directory, patch) as sink, open_shop(directory / "data", sink) as shop:
            assert (await shop.create("SKU001", 10))[0] == 201
            yield shop


@pytest.mark.parametrize(("case", "body", "answer"), ORDERS, ids=[c for c, _, _ in ORDERS])
async def test_bad_orders(stocked: Shop, case: str, body: Any, answer: tuple[int, str]) -> None:
    assert await _send(stocked, "POST", "/api/order", body) == answer
    await stocked.settle()
    assert await stocked.stock("SKU001") == [10]
    assert await stocked.orders("user123") == [] and await stocked.orders(" ") == []
    assert await stocked.placed() == [] and await stocked.mails() == []


@pytest.mark.parametrize(("case", "body", "answer"), INVENTORIES, ids=[c for c, _, _ in INVENTORIES])
async def test_bad_inventory(stocked: Shop, case: str, body: Any, answer: tuple[int, str]) -> None:
    assert await _send(stocked, "POST", "/api/inventory", body) == answer
    assert await stocked.stock("SKU001", "SKU-NEW", " ") == [10, None, None]


@pytest.mark.parametrize(("case", "body", "answer"), READS, ids=[c for c, _, _ in READS])
async def test_bad_stock_reads(stocked: Shop, case: str, body: Any, answer: tuple[int, str]) -> None:
    assert await _send(stocked, "GET", "/api/inventory", body) == answer
