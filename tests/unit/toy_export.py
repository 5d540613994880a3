"""A toy system exporting an event to a named topic as Avro: ``shop`` places orders, ``notifier`` mails each once.

``OrderPlaced`` is exported to topic ``order-placed`` with the shop's Avro schema
(``OrderPlacedEvent{orderNumber, email, firstName, lastName}``); embedded, the notifier reads the
shop's log as usual; over Kafka it reads the exported topic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, select

from junction.avro import AvroCodec
from junction.events import Event
from junction.runtime import System
from junction.service import Service
from junction.uow import UnitOfWork

SCHEMA: dict[str, Any] = {
    "type": "record", "name": "OrderPlacedEvent", "namespace": "zeli8888.lab4.events",
    "fields": [{"name": "orderNumber", "type": "string"}, {"name": "email", "type": "string"},
               {"name": "firstName", "type": "string"}, {"name": "lastName", "type": "string"}],
}


class OrderPlaced(Event):
    event_name = "ToyExportOrderPlaced"
    order_number: str
    email: str
    first_name: str
    last_name: str
    sku_code: str = ""  # not in the Avro record: a consumer of the topic gets the default


class Order(BaseModel):
    order_number: str
    email: str


shop = Service("shop", worker=41)
notifier = Service("notifier", worker=42)
CODEC = AvroCodec(SCHEMA)
shop.export("order-placed", OrderPlaced, CODEC)
mails = notifier.table(
    "mails",
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("order_number", String, nullable=False),
    Column("line", String, nullable=False),
)


@shop.route("POST", "/orders")
async def place(body: Order, uow: UnitOfWork) -> None:
    uow.append(f"order-{body.order_number}", OrderPlaced(order_number=body.order_number, email=body.email,
                                                         first_name="John", last_name="Doe", sku_code="SKU001"),
               key=body.order_number)


@notifier.on("shop", OrderPlaced)
async def mail(event: OrderPlaced, uow: UnitOfWork) -> None:
    line = f"{event.email}: Hi {event.first_name},{event.last_name} ({event.sku_code or 'no sku'})"
    uow.execute(mails.insert().values(order_number=event.order_number, line=line))


async def sent(uow: UnitOfWork) -> list[tuple[str, str]]:
    """The mails sent so far: (order number, line)."""
    rows = await uow.fetch_all(select(mails).order_by(mails.c.n))
    return [(r["order_number"], r["line"]) for r in rows]


def system() -> System:
    """The toy export system."""
    return System("toyexport", [shop, notifier])
