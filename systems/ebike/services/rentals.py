"""rentals: start and stop rentals, the unlocking fee and drift-free per-minute charging.

A rental is an event-sourced aggregate (stream ``rental-<id>``) mirrored into the ``rentals`` table
in the same commit. Partial unique indexes on that table make "one active rental per customer and
per vehicle" atomic: a racing start fails its commit and runs again, and then sees the winner.

Money moves through accounting's contract only: a hold for the unlocking fee before the rental is
stored, then durable timers that finalize the hold and charge each 60 s mark with an idempotent
expense id, so a timer that fires twice never charges twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Column, Index, Integer, String, select

from ebike.contracts.api import Dto, rfc3339
from ebike.contracts.events import (
    CostUpdated,
    ExpenseCreated,
    RentalStarted,
    RentalStopped,
    VehicleCreated,
    VehicleDeleted,
    VehicleType,
    VehicleUpdated,
)
from ebike.contracts.fees import CHARGE_PERIOD_SECONDS, PER_MINUTE_FEE, UNLOCK_FEE
from junction.aggregate import Aggregate
from junction.errors import Conflict, HttpError, NotFound
from junction.events import Event
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("rentals", worker=6)

# What rentals knows of vehicles, from the vehicles log: the type sets the fees, the status says
# whether the twin lets it be rented.
vehicles = service.table(
    "vehicles",
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("status", String, nullable=False),
    Column("reserved_for", String, nullable=True),
)
vehicle_view = service.projection("rental-vehicles", tables=[vehicles])  # names are system-wide

rentals = service.table(
    "rentals",
    Column("id", String, primary_key=True),
    Column("customer_id", String, nullable=False),
    Column("vehicle_id", String, nullable=False),
    Column("vehicle_type", String, nullable=False),
    Column("started_at", String, nullable=False),
    Column("ended_at", String, nullable=True),
    Column("cost", Integer, nullable=False),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)
_active = rentals.c.ended_at.is_(None)
Index("rentals_one_active_per_customer", rentals.c.customer_id, unique=True, sqlite_where=_active,
      postgresql_where=_active)
Index("rentals_one_active_per_vehicle", rentals.c.vehicle_id, unique=True, sqlite_where=_active,
      postgresql_where=_active)
Index("rentals_by_customer", rentals.c.customer_id, rentals.c.started_at)

# RENTED is not here: whether a vehicle is rented is this service's own table's call, and the
# vehicles view says RENTED a little longer than the rental lasts (it learns of the stop later).
UNAVAILABLE = {"RETURNING", "COMING", "CHARGING"}

FINALIZE_TIMER = "finalize-unlock-fee"
CHARGE_TIMER = "charge-minute"


class Rental(Aggregate):
    """One rental: who, what, when, and the cost projected from accounting's expenses."""

    stream_type = "rental"

    customer_id: str = ""
    vehicle_id: str = ""
    vehicle_type: VehicleType = "BIKE"
    start: str = ""
    end: str | None = None
    cost: int = 0

    def apply(self, event: Event) -> None:
        """Change state by one event."""
        match event:
            case RentalStarted():
                self.customer_id, self.vehicle_id = event.customer_id, event.vehicle_id
                self.vehicle_type, self.start = event.vehicle_type, event.start
            case RentalStopped():
                self.end = event.end
            case CostUpdated():
                self.cost = event.cost

    def mark(self, minute: int) -> float:
        """The instant (Unix seconds) of the ``minute``-th charge: counted from the start, so never drifting."""
        return datetime.fromisoformat(self.start).timestamp() + CHARGE_PERIOD_SECONDS * minute

    def reached(self, minute: int) -> bool:
        """True when the ``minute``-th mark was reached before the rental stopped."""
        return self.end is None or self.mark(minute) < datetime.fromisoformat(self.end).timestamp()


class StartRental(Dto):
    customer_id: str = Field(min_length=1)
    vehicle_id: str = Field(min_length=1)


class StopRental(Dto):
    customer_id: str = Field(min_length=1)


class RentalOut(Dto):
    id: str
    customer_id: str
    vehicle_id: str
    vehicle_type: VehicleType
    start: str
    end: str | None
    cost: int
    created_at: str
    updated_at: str


def _out(row: Any) -> RentalOut:
    return RentalOut(id=row["id"], customer_id=row["customer_id"], vehicle_id=row["vehicle_id"],
                     vehicle_type=row["vehicle_type"], start=row["started_at"], end=row["ended_at"],
                     cost=row["cost"], created_at=row["created_at"], updated_at=row["updated_at"])


async def _has_active(uow: UnitOfWork, column: Any, value: str) -> bool:
    return await uow.fetch_one(select(rentals.c.id).where(column == value, _active)) is not None


def _rentable_by(vehicle: Any, customer_id: str) -> bool:
    """Whether the twin's status lets this customer rent it (a WAITING bike only for whom it waits)."""
    if vehicle["status"] == "WAITING":
        return bool(vehicle["reserved_for"] == customer_id)
    return vehicle["status"] not in UNAVAILABLE


def _arm_charge(uow: UnitOfWork, rental: Rental, minute: int) -> None:
    # One timer id per (rental, minute): a duplicate firing re-arms the same next timer, never a second chain.
    uow.schedule(rental.mark(minute), CHARGE_TIMER, {"rentalId": rental.id, "minute": minute},
                 timer_id=f"charge-{rental.id}-{minute}")


# -- commands --------------------------------------------------------------------------------------
@service.route("POST", "/rentals/start")
async def start_rental(body: StartRental, uow: UnitOfWork) -> RentalOut:
    """Check customer and vehicle, hold the unlocking fee, then store the rental and arm its timers."""
    # Spec section 6: the vehicle is looked up first (an unknown one is "not found" whoever asks),
    # then the customer's active rental is checked before the vehicle's (scenario E4.5).
    vehicle = await uow.fetch_one(select(vehicles).where(vehicles.c.id == body.vehicle_id))
    if vehicle is None:
        raise NotFound("vehicle not found")
    if await _has_active(uow, rentals.c.customer_id, body.customer_id):
        raise Conflict("customer already has an active rental")
    if await _has_active(uow, rentals.c.vehicle_id, body.vehicle_id):
        raise Conflict("vehicle already rented")
    if not _rentable_by(vehicle, body.customer_id):
        raise Conflict("vehicle is not available")
    fee = UNLOCK_FEE[vehicle["type"]]
    # accounting's 400 "... does not have enough credit balance" passes through as our answer
    hold = await uow.call("accounting").put("/preliminary-expenses", json={
        "inquiryId": uow.new_id(), "customerId": body.customer_id, "amount": fee})

    now = uow.now()
    start = rfc3339(now)
    rental = await uow.create(Rental, uow.new_id())
    rental.record(RentalStarted(id=rental.id, customer_id=body.customer_id, vehicle_id=body.vehicle_id,
                                vehicle_type=vehicle["type"], start=start))
    row = {"id": rental.id, "customer_id": body.customer_id, "vehicle_id": body.vehicle_id,
           "vehicle_type": vehicle["type"], "started_at": start, "ended_at": None, "cost": 0,
           "created_at": start, "updated_at": start}
    uow.execute(rentals.insert().values(**row))  # a racing start for the customer or vehicle fails here
    uow.schedule(now, FINALIZE_TIMER, {"holdId": hold["id"], "rentalId": rental.id,
                                       "customerId": body.customer_id, "amount": fee})
    _arm_charge(uow, rental, 1)
    return _out(row)


@service.route("POST", "/rentals/{rental_id}/stop")
async def stop_rental(rental_id: str, body: StopRental, uow: UnitOfWork) -> RentalOut:
    """The renter ends the rental; it answers with the cost projected so far."""
    rental = await uow.load(Rental, rental_id)
    if rental is None:
        raise NotFound("rental not found")
    if rental.customer_id != body.customer_id:
        raise HttpError(f"customer {body.customer_id} not authorized to stop rental {rental_id}", status=403)
    if rental.end is not None:
        raise Conflict("rental already ended")
    end = rfc3339(uow.now())
    rental.record(RentalStopped(id=rental.id, customer_id=rental.customer_id, vehicle_id=rental.vehicle_id,
                                start=rental.start, end=end))
    changes = {"ended_at": end, "updated_at": end}
    uow.execute(rentals.update().where(rentals.c.id == rental_id).values(**changes))
    row = await uow.fetch_one(select(rentals).where(rentals.c.id == rental_id))
    if row is None:  # the row is written with the rental's first event
        raise NotFound("rental not found")
    return _out({**row, **changes, "cost": rental.cost})


# -- queries ---------------------------------------------------------------------------------------
@service.route("GET", "/vehicles/{vehicle_id}/rentals/active")
async def vehicle_rental(vehicle_id: str, uow: UnitOfWork) -> RentalOut | None:
    """The vehicle's active rental, or null (strongly consistent: vehicles asks before a delete)."""
    row = await uow.fetch_one(select(rentals).where(rentals.c.vehicle_id == vehicle_id, _active))
    return _out(row) if row is not None else None


@service.route("GET", "/customers/{customer_id}/rentals/active")
async def active_rental(customer_id: str, uow: UnitOfWork) -> RentalOut | None:
    """The customer's active rental, or null."""
    row = await uow.fetch_one(select(rentals).where(rentals.c.customer_id == customer_id, _active))
    return _out(row) if row is not None else None


@service.route("GET", "/customers/{customer_id}/rentals/past")
async def past_rentals(customer_id: str, uow: UnitOfWork) -> list[RentalOut]:
    """The customer's ended rentals, oldest first."""
    rows = await uow.fetch_all(select(rentals).where(rentals.c.customer_id == customer_id,
                                                     rentals.c.ended_at.is_not(None))
                               .order_by(rentals.c.started_at, rentals.c.id))
    return [_out(r) for r in rows]


# -- timers ----------------------------------------------------------------------------------------
@service.timer(FINALIZE_TIMER)
async def finalize_unlock_fee(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """Turn the unlocking-fee hold into an expense; if the hold is gone, charge the fee anyway."""
    accounting = uow.call("accounting")
    try:
        await accounting.post(f"/preliminary-expenses/{payload['holdId']}/finalize",
                              json={"rentalId": payload["rentalId"]})
    except UpstreamError as failure:
        expired = failure.status == 400 and failure.message == "preliminary expense expired"
        if not (expired or failure.status == 404):
            raise  # the platform re-arms the timer with backoff
        # The id makes a re-fired timer charge once; the fee is never lost nor doubled.
        await accounting.put("/expenses", json={
            "id": f"{payload['rentalId']}-unlock", "customerId": payload["customerId"],
            "rentalId": payload["rentalId"], "amount": payload["amount"]})


@service.timer(CHARGE_TIMER)
async def charge_minute(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """Charge one minute mark (idempotently) and arm the next one, 60 s after this mark."""
    rental = await uow.load(Rental, payload["rentalId"])
    minute = int(payload["minute"])
    if rental is None or not rental.reached(minute):
        return  # stopped before this mark: the chain ends here
    await uow.call("accounting").put("/expenses", json={
        "id": f"{rental.id}-{minute}", "customerId": rental.customer_id, "rentalId": rental.id,
        "amount": PER_MINUTE_FEE[rental.vehicle_type]})
    if rental.end is None:
        _arm_charge(uow, rental, minute + 1)


# -- consumers -------------------------------------------------------------------------------------
@service.on("accounting", ExpenseCreated)
async def add_cost(event: ExpenseCreated, uow: UnitOfWork) -> None:
    """Add a rental's expense to its cost and publish the running total."""
    rental = await uow.load(Rental, event.rental_id) if event.rental_id else None
    if rental is None or rental.customer_id != event.customer_id:
        return  # not an expense of one of our rentals (or charged to someone else)
    rental.record(CostUpdated(id=rental.id, customer_id=rental.customer_id, vehicle_id=rental.vehicle_id,
                              vehicle_type=rental.vehicle_type, start=rental.start, cost=rental.cost + event.amount))
    uow.execute(rentals.update().where(rentals.c.id == rental.id)
                .values(cost=rental.cost, updated_at=rfc3339(uow.event_time())))


@vehicle_view.on("vehicles", VehicleCreated, VehicleUpdated, VehicleDeleted)
async def project_vehicle(event: VehicleCreated | VehicleUpdated | VehicleDeleted, uow: UnitOfWork) -> None:
    """Keep the local vehicle view: type, twin status and reservation."""
    match event:
        case VehicleCreated():
            uow.execute(vehicles.insert().values(id=event.id, type=event.type, status="AVAILABLE"))
        case VehicleUpdated():
            uow.execute(vehicles.update().where(vehicles.c.id == event.id)
                        .values(status=event.status, reserved_for=event.reserved_for))
        case VehicleDeleted():
            uow.execute(vehicles.delete().where(vehicles.c.id == event.id))
