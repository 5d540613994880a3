"""inventory: stock per SKU, over REST (the public API) and gRPC (the reference's InventoryService).

Every change of stock is one atomic conditional UPDATE (``quantity = quantity - q WHERE sku = ? AND
quantity >= q``), so concurrent orders can never take stock below zero: of N orders of s against q
in stock exactly ⌊q/s⌋ succeed, whatever the interleaving.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Column, String, select
from starlette.responses import PlainTextResponse, Response

from junction.errors import BadRequest, ConditionFailed, Conflict
from junction.http_errors import text_errors
from junction.service import Service
from junction.uow import UnitOfWork
from shop.contracts import inventory as contract
from shop.contracts.api import INVALID_BODY, INVENTORY_CREATED, INVENTORY_FAILED, NewInventory, SkuCodes
from shop.contracts.inventory import InventoryRequest, InventoryResponse

service = Service("inventory", worker=1, errors=text_errors)

stock = service.table(
    "inventory",
    Column("sku_code", String, primary_key=True),  # SKUs are unique (invariant 4)
    Column("quantity", BigInteger, nullable=False),  # restores add up beyond int32; never below 0
)

LOOKUP_CHUNK = 500  # SKUs per query: an IN list stays far below the stores' parameter limits


@service.route("POST", "/api/inventory", invalid=Conflict(INVENTORY_FAILED))
async def create(body: NewInventory, uow: UnitOfWork) -> Response:
    """Create a SKU with its stock; 409 when it exists (a racing creator loses on the primary key)."""
    if await uow.fetch_one(select(stock.c.sku_code).where(stock.c.sku_code == body.sku_code)) is not None:
        raise Conflict(INVENTORY_FAILED)
    uow.execute(stock.insert().values(sku_code=body.sku_code, quantity=body.quantity))
    return PlainTextResponse(INVENTORY_CREATED, status_code=201)


@service.route("GET", "/api/inventory", invalid=BadRequest(INVALID_BODY))
async def levels(body: SkuCodes, uow: UnitOfWork) -> list[int | None]:
    """The stock of each SKU asked for, in the order asked; null for an unknown one (a GET with a body)."""
    wanted = list(dict.fromkeys(body.root))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start:start + LOOKUP_CHUNK]
        rows = await uow.fetch_all(select(stock).where(stock.c.sku_code.in_(chunk)))
        found.update((row["sku_code"], row["quantity"]) for row in rows)
    return [found.get(sku) for sku in body.root]


def _checked(request: InventoryRequest) -> tuple[str, int]:
    """The SKU and quantity of a request, or INVALID_ARGUMENT (blank SKU, quantity not positive)."""
    if not request.sku_code.strip() or request.quantity <= 0:
        raise BadRequest(contract.INVALID)
    return request.sku_code, request.quantity


async def _changed(uow: UnitOfWork, answers: Sequence[str]) -> InventoryResponse:
    """Commit the guarded write queued in ``uow``: the first answer when it changed a row, else the second."""
    try:
        await uow.commit()
    except ConditionFailed:
        return InventoryResponse(success=False, message=answers[1])
    return InventoryResponse(success=True, message=answers[0])


@service.grpc(contract.add_InventoryServiceServicer_to_server, port=contract.GRPC_PORT)
class InventoryService:
    """The reference's gRPC service, names kept (package zeli8888.lab4.grpc)."""

    async def CheckAndReduceInventory(self, request: InventoryRequest, uow: UnitOfWork) -> InventoryResponse:
        """Take ``quantity`` of the SKU if that much is in stock, atomically."""
        sku, quantity = _checked(request)
        uow.require(stock.update()
                    .where(stock.c.sku_code == sku, stock.c.quantity >= quantity)
                    .values(quantity=stock.c.quantity - quantity))
        return await _changed(uow, (contract.REDUCED, contract.INSUFFICIENT))

    async def RestoreInventory(self, request: InventoryRequest, uow: UnitOfWork) -> InventoryResponse:
        """Give ``quantity`` back (the order saga's compensation)."""
        sku, quantity = _checked(request)
        uow.require(stock.update().where(stock.c.sku_code == sku).values(quantity=stock.c.quantity + quantity))
        return await _changed(uow, (contract.RESTORED, contract.NOT_FOUND))
