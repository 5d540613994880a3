"""order: placing orders (a saga over inventory's gRPC service) and listing a user's orders.

Placing an order:

1. take the stock: ``CheckAndReduceInventory`` over gRPC, with a deadline (no stock, an unknown SKU
   or an unreachable inventory: 409, nothing changed);
2. store the order and its ``OrderPlaced`` event in one unit of work (the event goes out through the
   log, the outbox: to the notification service, and to Kafka when distributed);
3. if anything fails after step 1, give the stock back (``RestoreInventory``, the compensation) and
   answer 409.

The order number is a server-made UUID v4 and the stored price is price x quantity to the cent, as
the running reference does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import grpc
import structlog
from sqlalchemy import BigInteger, Column, Integer, String, select
from starlette.responses import PlainTextResponse, Response

from junction.avro import AvroCodec
from junction.errors import Conflict
from junction.grpc import GrpcClient
from junction.http_errors import text_errors
from junction.service import Service
from junction.uow import UnitOfWork
from shop.contracts import CONTRACTS
from shop.contracts.api import ORDER_FAILED, ORDER_PLACED, OrderRequest, money_json, total_cents
from shop.contracts.events import OrderPlaced
from shop.contracts.inventory import InventoryRequest, InventoryServiceStub

log = structlog.get_logger()

service = Service("order", worker=2, errors=text_errors)

orders = service.table(
    "orders",
    Column("order_number", String, primary_key=True),
    Column("user_id", String, nullable=False, index=True),
    Column("sku_code", String, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("price_cents", BigInteger, nullable=False),  # exact: money is never a float here
    Column("placed", BigInteger, nullable=False),  # a Snowflake: orders list in the order they were placed
)

inventory = GrpcClient("inventory", InventoryServiceStub, deadline=2.0)

# Distributed, OrderPlaced also goes to topic ``order-placed`` as the reference's Avro OrderPlacedEvent.
service.export("order-placed", OrderPlaced, AvroCodec.from_file(CONTRACTS / "order-placed.avsc"))


@service.route("POST", "/api/order", invalid=Conflict(ORDER_FAILED))
async def place(body: OrderRequest, uow: UnitOfWork) -> Response:
    """Place an order: 201 once the order and its event are committed, 409 with nothing changed otherwise."""
    # Shielded: a caller that gives up (a gateway's time limit) must not stop the saga between taking the
    # stock and storing the order or giving it back.
    return await asyncio.shield(_place(body, uow))


async def _place(body: OrderRequest, uow: UnitOfWork) -> Response:
    cents = total_cents(body.price, body.quantity)
    if cents is None:
        raise Conflict(ORDER_FAILED)
    taken = InventoryRequest(sku_code=body.sku_code, quantity=body.quantity)
    try:
        reduced = await inventory(uow).CheckAndReduceInventory(taken)
    except grpc.aio.AioRpcError as error:  # invalid, unreachable, past the deadline: no stock was taken
        log.info("order refused by inventory", sku=body.sku_code, code=error.code().name)
        raise Conflict(ORDER_FAILED) from None
    if not reduced.success:
        raise Conflict(ORDER_FAILED)
    number = str(uuid.uuid4())
    user = body.user_details
    try:
        uow.execute(orders.insert().values(order_number=number, user_id=user.user_id, sku_code=body.sku_code,
                                           quantity=body.quantity, price_cents=cents, placed=uow.ids.next_int()))
        uow.append(f"order-{number}", OrderPlaced(order_number=number, email=user.email, first_name=user.first_name,
                                                  last_name=user.last_name), expected_version=0)
        await uow.commit()  # now, not after the handler: a failure must be compensated before answering
    except Exception as error:
        log.warning("order not stored, giving the stock back", order=number, error=repr(error))
        await restore(uow, taken)
        raise Conflict(ORDER_FAILED) from None
    return PlainTextResponse(ORDER_PLACED, status_code=201)


async def restore(uow: UnitOfWork, taken: InventoryRequest) -> None:
    """The compensation: give back stock taken for an order that was not stored (logged when it cannot be)."""
    try:
        answer = await inventory(uow).RestoreInventory(taken)
    except grpc.aio.AioRpcError as error:
        log.error("compensation failed: stock not restored", sku=taken.sku_code, quantity=taken.quantity,
                  code=error.code().name)
        return
    if not answer.success:
        log.error("compensation failed: stock not restored", sku=taken.sku_code, quantity=taken.quantity,
                  reason=answer.message)


@service.route("GET", "/api/order/{user_id}")
async def of_user(user_id: str, uow: UnitOfWork) -> Response:
    """A user's orders, oldest first (``[]`` for a user without any)."""
    rows = await uow.fetch_all(select(orders).where(orders.c.user_id == user_id).order_by(orders.c.placed))
    return Response("[" + ",".join(_order_json(row) for row in rows) + "]", media_type="application/json")


def _order_json(row: Any) -> str:
    """One order as the reference's OrderDTO, its price an exact JSON number."""
    head = json.dumps({"orderNumber": row["order_number"], "skuCode": row["sku_code"], "quantity": row["quantity"],
                       "userId": row["user_id"]}, separators=(",", ":"))
    return f'{head[:-1]},"price":{money_json(row["price_cents"])}}}'
