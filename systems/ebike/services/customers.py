"""customers: the eventually consistent customer view (name, position, balance, rental, last login).

The view is a projection built only from events (auth, accounting, rentals and its own log of
positions), so ``junction replay customers`` rebuilds it. Each source is consumed by its own
worker, so events of different sources arrive in any relative order: every handler first makes
sure the customer's row exists and then changes only its own columns, with relative updates in
SQL, so no change is lost whichever source comes first.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import FiniteFloat
from sqlalchemy import Column, Float, Integer, String, Update, case, exists, literal, select, text

from ebike.contracts.api import ActiveRentalOut, Dto, rfc3339
from ebike.contracts.events import (
    CostUpdated,
    CustomerPositionUpdated,
    ExpenseCreated,
    PaymentDeleted,
    PaymentUpdated,
    RentalStarted,
    RentalStopped,
    UserLoggedIn,
    UserRegistered,
)
from junction.errors import NotFound
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("customers", worker=4)

customers = service.table(
    "customers_view",
    Column("id", String, primary_key=True),
    # NULL until the customer's UserRegistered is projected: a balance or rental event from another
    # source may create the row first, and such a row is not a customer yet (it is not listed).
    Column("name", String),
    Column("position_x", Float, nullable=False, server_default=text("0")),
    Column("position_y", Float, nullable=False, server_default=text("0")),
    Column("credit_balance", Integer, nullable=False, server_default=text("0")),
    Column("last_login", String),
    Column("rental_id", String),  # the active rental, all NULL when there is none
    Column("rental_vehicle_id", String),
    Column("rental_vehicle_type", String),
    Column("rental_start", String),
    Column("rental_cost", Integer),
    Column("rental_created_at", Float),
    Column("rental_updated_at", Float),
    # Event times in epoch seconds, so "latest" is a numeric comparison that does not depend on
    # the order in which the sources' workers happen to run (a rebuild gives the same answer).
    Column("created_at", Float),
    Column("updated_at", Float, nullable=False),
)
view = service.projection("customers", tables=[customers])

CUSTOMER_NOT_FOUND = "customer not found"


# -- contract ------------------------------------------------------------------------------------
class PositionIn(Dto):
    position_x: FiniteFloat  # 0 is a valid coordinate (spec §0.7)
    position_y: FiniteFloat


class CustomerRentalOut(ActiveRentalOut):
    created_at: str
    updated_at: str


class CustomerOut(Dto):
    id: str
    name: str
    position_x: float
    position_y: float
    credit_balance: int
    active_rental: CustomerRentalOut | None
    last_login: str | None
    created_at: str
    updated_at: str


def _at(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def _out(row: Any) -> CustomerOut:
    rental = None
    if row["rental_id"] is not None:
        rental = CustomerRentalOut(
            id=row["rental_id"], vehicle_id=row["rental_vehicle_id"], customer_id=row["id"],
            vehicle_type=row["rental_vehicle_type"], start=row["rental_start"], cost=row["rental_cost"],
            created_at=_at(row["rental_created_at"]), updated_at=_at(row["rental_updated_at"]),
        )
    return CustomerOut(
        id=row["id"], name=row["name"], position_x=row["position_x"], position_y=row["position_y"],
        credit_balance=row["credit_balance"], active_rental=rental, last_login=row["last_login"],
        created_at=_at(row["created_at"]), updated_at=_at(row["updated_at"]),
    )


_listed = customers.c.name.is_not(None)


async def _find(uow: UnitOfWork, customer_id: str) -> Any:
    row = await uow.fetch_one(select(customers).where(customers.c.id == customer_id, _listed))
    if row is None:
        raise NotFound(CUSTOMER_NOT_FOUND)
    return row


# -- routes --------------------------------------------------------------------------------------
@service.route("GET", "/customers")
async def list_customers(uow: UnitOfWork) -> list[CustomerOut]:
    """Every registered customer, oldest first."""
    rows = await uow.fetch_all(select(customers).where(_listed).order_by(customers.c.created_at, customers.c.id))
    return [_out(r) for r in rows]


@service.route("GET", "/customers/{customer_id}")
async def get_customer(customer_id: str, uow: UnitOfWork) -> CustomerOut:
    """One customer, or 404 "customer not found"."""
    return _out(await _find(uow, customer_id))


@service.route("PATCH", "/customers/{customer_id}/position")
async def update_position(customer_id: str, body: PositionIn, uow: UnitOfWork) -> None:
    """Record the customer's new position; the view follows from the event."""
    await _find(uow, customer_id)
    uow.append(f"customer-{customer_id}",
               CustomerPositionUpdated(id=customer_id, position_x=body.position_x, position_y=body.position_y),
               key=customer_id)


# -- the projection ------------------------------------------------------------------------------
def _change(uow: UnitOfWork, customer_id: str, **values: Any) -> None:
    """Create the customer's row if no event made it yet, then set ``values`` and advance updated_at."""
    at = uow.event_time().timestamp()
    # Insert-if-absent in plain SQL (no dialect-specific upsert), in the same transaction as the
    # update: on SQLite writers are serialised; elsewhere a racing insert fails on the primary key
    # and the subscription retries the event.
    absent = ~exists().where(customers.c.id == customer_id)
    uow.execute(
        customers.insert().from_select(["id", "updated_at"], select(literal(customer_id), literal(at)).where(absent)),
        _update(customer_id, at, **values),
    )


def _update(customer_id: str, at: float, **values: Any) -> Update:
    """Set ``values`` on an existing row; updated_at only moves forward (sources interleave)."""
    latest = case((customers.c.updated_at < at, literal(at)), else_=customers.c.updated_at)
    return customers.update().where(customers.c.id == customer_id).values(**values, updated_at=latest)


_NO_RENTAL = dict.fromkeys(("rental_id", "rental_vehicle_id", "rental_vehicle_type", "rental_start", "rental_cost",
                            "rental_created_at", "rental_updated_at"))


@view.on("auth", UserRegistered, UserLoggedIn)
async def on_user(event: UserRegistered | UserLoggedIn, uow: UnitOfWork) -> None:
    """A registered CUSTOMER becomes a customer (admins never do); a login sets lastLogin."""
    match event:
        case UserRegistered(role="CUSTOMER"):
            _change(uow, event.id, name=event.username, created_at=uow.event_time().timestamp())
        case UserLoggedIn():
            # Same log as the registration, so a customer's row exists by now; an admin has none,
            # and this update then changes nothing.
            uow.execute(_update(event.id, uow.event_time().timestamp(), last_login=event.timestamp))


@view.on("customers", CustomerPositionUpdated)
async def on_position(event: CustomerPositionUpdated, uow: UnitOfWork) -> None:
    """The customer moved."""
    _change(uow, event.id, position_x=event.position_x, position_y=event.position_y)


def balance_change(event: PaymentUpdated | PaymentDeleted | ExpenseCreated) -> int:
    """How an accounting event moves the balance: only confirmed payments count (spec §6)."""
    match event:
        case PaymentUpdated(status="CONFIRMED"):
            return event.amount
        case PaymentDeleted(status="CONFIRMED") | ExpenseCreated():
            return -event.amount
    return 0


@view.on("accounting", PaymentUpdated, PaymentDeleted, ExpenseCreated)
async def on_money(event: PaymentUpdated | PaymentDeleted | ExpenseCreated, uow: UnitOfWork) -> None:
    """Follow the credit balance (preliminary expenses are ignored, as in the reference)."""
    delta = balance_change(event)
    if delta:
        _change(uow, event.customer_id, credit_balance=customers.c.credit_balance + delta)


@view.on("rentals", RentalStarted, CostUpdated, RentalStopped)
async def on_rental(event: RentalStarted | CostUpdated | RentalStopped, uow: UnitOfWork) -> None:
    """Track the active rental; cost and stop apply only to the rental that is active."""
    at = uow.event_time().timestamp()
    match event:
        case RentalStarted():
            _change(uow, event.customer_id, rental_id=event.id, rental_vehicle_id=event.vehicle_id,
                    rental_vehicle_type=event.vehicle_type, rental_start=event.start, rental_cost=0,
                    rental_created_at=at, rental_updated_at=at)
        case CostUpdated():
            uow.execute(_update(event.customer_id, at, rental_cost=event.cost, rental_updated_at=at)
                        .where(customers.c.rental_id == event.id))
        case RentalStopped():
            uow.execute(_update(event.customer_id, at, **_NO_RENTAL).where(customers.c.rental_id == event.id))


__all__ = ["service", "view"]
