"""inventory: the REST API and the reference's gRPC service; stock changes are atomic conditional updates."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from shop.contracts import inventory as contract
from shop.contracts.inventory import InventoryRequest
from shop.tests.conftest import Shop


async def test_create_once_and_read_in_request_order(shop: Shop) -> None:
    assert await shop.create("SKU001", 100) == (201, "Inventory created successfully")
    assert await shop.create("SKU001", 5) == (409, "Inventory creation failed")
    assert await shop.create("SKU002", 50) == (201, "Inventory created successfully")
    assert await shop.stock("SKU002", "NOPE", "SKU001", "SKU002") == [50, None, 100, 50]
    assert await shop.stock() == []


async def test_racing_creators_of_one_sku_one_wins(shop: Shop) -> None:
    answers = await asyncio.gather(*(shop.create("SKU-RACE", n) for n in range(1, 11)))
    assert sorted(status for status, _ in answers) == [201] + [409] * 9
    assert (await shop.stock("SKU-RACE"))[0] in range(1, 11)


async def test_grpc_reduce_and_restore_with_the_reference_answers(shop: Shop) -> None:
    await shop.create("SKU001", 10)
    stub = shop.inventory()
    reduced = await stub.CheckAndReduceInventory(InventoryRequest(sku_code="SKU001", quantity=4), timeout=5)
    assert (reduced.success, reduced.message) == (True, contract.REDUCED)
    refused = await stub.CheckAndReduceInventory(InventoryRequest(sku_code="SKU001", quantity=7), timeout=5)
    assert (refused.success, refused.message) == (False, contract.INSUFFICIENT)
    unknown = await stub.CheckAndReduceInventory(InventoryRequest(sku_code="NOPE", quantity=1), timeout=5)
    assert (unknown.success, unknown.message) == (False, contract.INSUFFICIENT)
    restored = await stub.RestoreInventory(InventoryRequest(sku_code="SKU001", quantity=4), timeout=5)
    assert (restored.success, restored.message) == (True, contract.RESTORED)
    missing = await stub.RestoreInventory(InventoryRequest(sku_code="NOPE", quantity=4), timeout=5)
    assert (missing.success, missing.message) == (False, contract.NOT_FOUND)
    assert await shop.stock("SKU001", "NOPE") == [10, None]


@pytest.mark.parametrize(("sku", "quantity"), [("", 1), ("  ", 1), ("SKU001", 0), ("SKU001", -3)])
async def test_grpc_blank_sku_or_quantity_not_positive_is_invalid_argument(shop: Shop, sku: str,
                                                                           quantity: int) -> None:
    await shop.create("SKU001", 10)
    for method in (shop.inventory().CheckAndReduceInventory, shop.inventory().RestoreInventory):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await method(InventoryRequest(sku_code=sku, quantity=quantity), timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details() == contract.INVALID
    assert await shop.stock("SKU001") == [10]


async def test_stock_never_goes_negative_under_concurrent_decrements(shop: Shop) -> None:
    """Invariant 1 at the gRPC level: 50 concurrent takes of 7 from 100 → exactly ⌊100/7⌋ = 14 succeed."""
    await shop.create("SKU001", 100)
    take = InventoryRequest(sku_code="SKU001", quantity=7)
    answers = await asyncio.gather(*(shop.inventory().CheckAndReduceInventory(take, timeout=10) for _ in range(50)))
    assert sum(a.success for a in answers) == 100 // 7
    assert await shop.stock("SKU001") == [100 - 7 * (100 // 7)]


async def test_the_reference_contract_names(shop: Shop) -> None:
    from shop.contracts import inventory_service_pb2 as pb2

    service = pb2.DESCRIPTOR.services_by_name["InventoryService"]
    assert service.full_name == "zeli8888.lab4.grpc.InventoryService"
    assert [m.name for m in service.methods] == ["CheckAndReduceInventory", "RestoreInventory"]
    assert [f.name for f in pb2.InventoryRequest.DESCRIPTOR.fields] == ["sku_code", "quantity"]
    assert [f.name for f in pb2.InventoryResponse.DESCRIPTOR.fields] == ["success", "message"]
