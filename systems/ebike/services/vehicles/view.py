"""The read model ``vehicles``: built only from the vehicles and rentals logs, so a replay rebuilds it.

The two logs are consumed by separate workers and arrive in any relative order, so each log fills
its own table (vehicles → ``vehicles_view``, rentals → ``vehicle_rentals``) and reads join them:
the final rows depend only on each log's own order. ``updatedAt`` moves with vehicle events only,
for the same reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Float, Integer, String, and_, or_, select
from sqlalchemy.sql import Select

from ebike.contracts.api import ActiveRentalOut, rfc3339
from ebike.contracts.events import (
    CostUpdated,
    Point,
    RentalStarted,
    RentalStopped,
    VehicleCreated,
    VehicleDeleted,
    VehicleUpdated,
)
from ebike.services.vehicles.dto import VehicleOut
from ebike.services.vehicles.model import service
from junction.uow import UnitOfWork

vehicles_view = service.table(
    "vehicles_view",
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("position_x", Float, nullable=False),
    Column("position_y", Float, nullable=False),
    Column("battery", Float, nullable=False),
    Column("status", String, nullable=False, index=True),
    Column("target_x", Float),
    Column("target_y", Float),
    Column("reserved_for", String),
    Column("created_at", String, nullable=False),
    Column("updated_at", String, nullable=False),
)
vehicle_rentals = service.table(
    "vehicle_rentals",
    Column("vehicle_id", String, primary_key=True),
    Column("rental_id", String, nullable=False, index=True),
    Column("customer_id", String, nullable=False),
    Column("vehicle_type", String, nullable=False),
    Column("start", String, nullable=False),
    Column("cost", Integer, nullable=False),
)
view = service.projection("vehicles", tables=[vehicles_view, vehicle_rentals])


@view.on("vehicles", VehicleCreated, VehicleUpdated, VehicleDeleted)
async def project_vehicle(event: VehicleCreated | VehicleUpdated | VehicleDeleted, uow: UnitOfWork) -> None:
    """Keep a vehicle's row in step with its own events."""
    at = rfc3339(uow.event_time())
    match event:
        case VehicleCreated():
            uow.execute(vehicles_view.delete().where(vehicles_view.c.id == event.id))
            uow.execute(vehicles_view.insert().values(
                id=event.id, type=event.type, position_x=event.position_x, position_y=event.position_y,
                battery=event.battery, status="AVAILABLE", created_at=at, updated_at=at))
        case VehicleUpdated():
            uow.execute(vehicles_view.update().where(vehicles_view.c.id == event.id).values(
                position_x=event.position_x, position_y=event.position_y, battery=event.battery,
                status=event.status, target_x=event.target.x if event.target else None,
                target_y=event.target.y if event.target else None, reserved_for=event.reserved_for,
                updated_at=at))
        case VehicleDeleted():
            uow.execute(vehicles_view.delete().where(vehicles_view.c.id == event.id))


@view.on("rentals", RentalStarted, RentalStopped, CostUpdated)
async def project_rental(event: RentalStarted | RentalStopped | CostUpdated, uow: UnitOfWork) -> None:
    """A vehicle's active rental: set on start, cost on updates, cleared by the stop of that same rental."""
    match event:
        case RentalStarted():
            uow.execute(vehicle_rentals.delete().where(vehicle_rentals.c.vehicle_id == event.vehicle_id))
            uow.execute(vehicle_rentals.insert().values(
                vehicle_id=event.vehicle_id, rental_id=event.id, customer_id=event.customer_id,
                vehicle_type=event.vehicle_type, start=event.start, cost=0))
        case RentalStopped():
            uow.execute(vehicle_rentals.delete().where(vehicle_rentals.c.vehicle_id == event.vehicle_id,
                                                       vehicle_rentals.c.rental_id == event.id))
        case CostUpdated():  # an update, never an insert: a late cost must not revive a stopped rental
            uow.execute(vehicle_rentals.update().where(vehicle_rentals.c.rental_id == event.id)
                        .values(cost=event.cost))


# -- queries ---------------------------------------------------------------------------------------
def _joined() -> Select[Any]:
    return (select(vehicles_view, vehicle_rentals)
            .select_from(vehicles_view.outerjoin(vehicle_rentals, vehicles_view.c.id == vehicle_rentals.c.vehicle_id))
            .order_by(vehicles_view.c.id))


def _out(row: Any) -> VehicleOut:
    target = None if row["target_x"] is None else Point(x=row["target_x"], y=row["target_y"])
    rental = None if row["rental_id"] is None else ActiveRentalOut(
        id=row["rental_id"], vehicle_id=row["id"], customer_id=row["customer_id"],
        vehicle_type=row["vehicle_type"], start=row["start"], cost=row["cost"])
    return VehicleOut(
        id=row["id"], type=row["type"], position_x=row["position_x"], position_y=row["position_y"],
        battery=row["battery"], available=row["status"] == "AVAILABLE", status=row["status"], target=target,
        reserved_for=row["reserved_for"], active_rental=rental, created_at=row["created_at"],
        updated_at=row["updated_at"])


def _all(rows: Sequence[Any]) -> list[VehicleOut]:
    return [_out(row) for row in rows]


async def all_vehicles(uow: UnitOfWork) -> list[VehicleOut]:
    """Every vehicle, by id."""
    return _all(await uow.fetch_all(_joined()))


async def one_vehicle(uow: UnitOfWork, vehicle_id: str) -> VehicleOut | None:
    """One vehicle, or None."""
    row = await uow.fetch_one(_joined().where(vehicles_view.c.id == vehicle_id))
    return _out(row) if row else None


async def available_vehicles(uow: UnitOfWork, customer_id: str | None) -> list[VehicleOut]:
    """AVAILABLE vehicles with no active rental, plus the a-bike WAITING for ``customer_id``."""
    waiting_for_caller = and_(vehicles_view.c.status == "WAITING", vehicles_view.c.reserved_for == customer_id)
    ready = vehicles_view.c.status == "AVAILABLE"
    condition = or_(ready, waiting_for_caller) if customer_id else ready
    # a rental the twin has not turned into RENTED yet already hides the vehicle
    return _all(await uow.fetch_all(_joined().where(condition, vehicle_rentals.c.rental_id.is_(None))))
