"""A two-service toy system for platform tests: ``orders`` records events, ``mailer`` reacts.

The mailer's handler can be told to fail for chosen keys, which is how poison messages are made.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import Column, Integer, String, select

from junction.events import Event
from junction.runtime import System
from junction.service import Service
from junction.store import Batch, Store
from junction.subscriptions import RetryPolicy
from junction.uow import UnitOfWork

FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.001, max_delay=0.005)  # poison parks within milliseconds


class OrderPlaced(Event):
    event_name = "ToyOrderPlaced"
    order_id: str
    customer: str
    seq: int


class Place(BaseModel):
    customer: str
    seq: int


orders = Service("orders", worker=11)
mailer = Service("mailer", worker=12)
mails = mailer.table(
    "mails",
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("customer", String, nullable=False),
    Column("seq", Integer, nullable=False),
)
failing_customers: set[str] = set()  # the handler raises for these (poison messages)


@orders.route("POST", "/orders")
async def place(body: Place, uow: UnitOfWork) -> dict[str, str]:
    order_id = uow.new_id()
    uow.append(f"customer-{body.customer}", OrderPlaced(order_id=order_id, customer=body.customer, seq=body.seq),
               key=body.customer)
    return {"id": order_id}


@orders.timer("reminder")
async def remind(payload: dict[str, str], uow: UnitOfWork) -> None:
    uow.append(f"customer-{payload['customer']}", OrderPlaced(order_id="r", customer=payload["customer"], seq=-1),
               key=payload["customer"])


@mailer.on("orders", OrderPlaced)
async def send_mail(event: OrderPlaced, uow: UnitOfWork) -> None:
    if event.customer in failing_customers:
        raise RuntimeError(f"mail server rejects {event.customer}")
    uow.execute(mails.insert().values(customer=event.customer, seq=event.seq))


async def sent(uow: UnitOfWork) -> list[tuple[str, int]]:
    """The mails sent so far, in sending order."""
    rows = await uow.fetch_all(select(mails).order_by(mails.c.n))
    return [(r["customer"], r["seq"]) for r in rows]


def system() -> System:
    """The toy system."""
    return System("toy", [orders, mailer])


class Killed(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it)."""


class DiesBeforeCheckpoint(Store):
    """Mixin for a store class: its process dies the moment a consumer tries to save its checkpoint."""

    async def commit(self, batch: Batch) -> int:
        """Die on a checkpoint-only commit; otherwise commit as the store does."""
        if batch.checkpoint is not None and not batch.inbox:
            raise Killed
        return await super().commit(batch)
