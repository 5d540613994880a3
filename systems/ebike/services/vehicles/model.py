"""The write side of vehicles: the event-sourced Vehicle and the tables committed with its events.

The Vehicle aggregate (stream ``vehicle-<id>``) is the truth. ``fleet`` mirrors the fields the
twin has to search by (status, position, who reserved or rented the vehicle) and is written in the
same transaction as the vehicle's events, so lookups such as "the nearest available a-bike" or
"this customer's request" are strongly consistent; decisions are still taken on the loaded
aggregate, whose expected version makes racing commands conflict. ``twin_stations`` is the
twin's copy of the stations, where returning a-bikes go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Column, Float, String, select

from ebike.contracts.events import (
    ABikeArrived,
    ABikeRequestCancelled,
    ABikeRequested,
    Point,
    VehicleCreated,
    VehicleDeleted,
    VehicleStatus,
    VehicleType,
    VehicleUpdated,
)
from junction.aggregate import Aggregate
from junction.events import Event
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("vehicles", worker=3)

MOVING: Final = frozenset({"RETURNING", "COMING"})
TICKING: Final = MOVING | {"CHARGING"}  # statuses the per-vehicle tick timer drives
IN_USE: Final = MOVING | {"RENTED", "WAITING"}  # a vehicle in these cannot be deleted

fleet = service.table(
    "fleet",
    Column("id", String, primary_key=True),
    Column("type", String, nullable=False),
    Column("status", String, nullable=False),
    Column("position_x", Float, nullable=False),
    Column("position_y", Float, nullable=False),
    # unique: two concurrent requests of one customer cannot both reserve a bike (NULLs do not clash)
    Column("reserved_for", String, unique=True),
    Column("renter", String, index=True),
    Column("rental_id", String),
    Column("rented_since", Float),
    Column("created_at", String, nullable=False),
)

twin_stations = service.table(
    "twin_stations",
    Column("id", String, primary_key=True),
    Column("position_x", Float, nullable=False),
    Column("position_y", Float, nullable=False),
)


@dataclass(frozen=True)
class State:
    """Everything a VehicleUpdated says about a vehicle."""

    position: Point
    battery: float
    status: VehicleStatus
    target: Point | None = None
    reserved_for: str | None = None


class Vehicle(Aggregate):
    """One vehicle: where it is, its battery, and what the twin is doing with it."""

    stream_type = "vehicle"
    type: VehicleType = "BIKE"
    position_x: float = 0.0
    position_y: float = 0.0
    battery: float = 1.0
    status: VehicleStatus = "AVAILABLE"
    target: Point | None = None
    reserved_for: str | None = None
    deleted: bool = False

    @property
    def position(self) -> Point:
        """Where the vehicle is."""
        return Point(x=self.position_x, y=self.position_y)

    @property
    def state(self) -> State:
        """The current state, to derive a new one from with ``dataclasses.replace``."""
        return State(self.position, self.battery, self.status, self.target, self.reserved_for)

    def update(self, state: State) -> None:
        """Record ``state`` in full as one VehicleUpdated (consumers never need an older event)."""
        self.record(VehicleUpdated(
            id=self.id, position_x=state.position.x, position_y=state.position.y, battery=state.battery,
            status=state.status, target=state.target, reserved_for=state.reserved_for,
        ))

    def apply(self, event: Event) -> None:
        """Change state by one event of the vehicle's stream."""
        match event:
            case VehicleCreated():
                self.type, self.position_x, self.position_y = event.type, event.position_x, event.position_y
                self.battery, self.status = event.battery, "AVAILABLE"
            case VehicleUpdated():
                self.position_x, self.position_y, self.battery = event.position_x, event.position_y, event.battery
                self.status, self.target, self.reserved_for = event.status, event.target, event.reserved_for
            case VehicleDeleted():
                self.deleted = True
            case ABikeRequested() | ABikeArrived() | ABikeRequestCancelled():
                pass  # facts for other services; the VehicleUpdated recorded with them carries the state


class RenterMoved(Event):
    """A customer's reported position, as the twin saw it (internal to vehicles)."""

    id: str  # the customer
    position_x: float
    position_y: float
    at: float  # platform time of the report


class RenterRentalChanged(Event):
    """The twin took note of a customer's rental starting or stopping (internal to vehicles)."""

    id: str  # the customer
    rental_id: str
    vehicle_id: str
    started: bool
    at: float  # platform time of the start or stop


class Renter(Aggregate):
    """What the twin knows of one customer: the latest position they reported.

    Positions come from the customers service and rentals from the rentals service, over two
    independent feeds (two Kafka topics when distributed), so a move can be handled before the
    rental it belongs to. Both handlers write this stream, so when they run at the same time one
    of them loses the optimistic race, runs again and sees the other's write: a move is never lost
    between "no rental yet" and "no position yet".
    """

    stream_type = "renter"
    position: Point | None = None
    moved_at: float | None = None
    vehicle_id: str | None = None  # of the latest rental
    rented_from: float | None = None
    rented_until: float | None = None  # None while it runs

    def apply(self, event: Event) -> None:
        """Change state by one event of the renter's stream."""
        match event:
            case RenterMoved():
                self.position, self.moved_at = Point(x=event.position_x, y=event.position_y), event.at
            case RenterRentalChanged(started=True):
                self.vehicle_id, self.rented_from, self.rented_until = event.vehicle_id, event.at, None
            case RenterRentalChanged(started=False):
                self.rented_until = event.at

    def left_behind(self, at: float) -> str | None:
        """The vehicle of the rental that had already ended when a move reported at ``at`` arrived,
        if the move belongs to that rental (reported before or at its end)."""
        if self.rented_from is None or self.rented_until is None:
            return None
        return self.vehicle_id if self.rented_from <= at <= self.rented_until else None

    def position_since(self, since: float) -> Point | None:
        """The latest reported position if it was reported at or after ``since``."""
        return self.position if self.moved_at is not None and self.moved_at >= since else None


async def load_renter(uow: UnitOfWork, customer_id: str) -> Renter:
    """The renter's state (a new, empty one the first time)."""
    return await uow.load(Renter, customer_id) or await uow.create(Renter, customer_id)


async def load_vehicle(uow: UnitOfWork, vehicle_id: str) -> Vehicle | None:
    """The vehicle, or None when it never existed or was deleted."""
    vehicle = await uow.load(Vehicle, vehicle_id)
    return None if vehicle is None or vehicle.deleted else vehicle


async def fleet_row(uow: UnitOfWork, *conditions: Any) -> Any | None:
    """The first fleet row matching ``conditions`` (lowest id first)."""
    return await uow.fetch_one(select(fleet).where(*conditions).order_by(fleet.c.id))


def mirror(uow: UnitOfWork, vehicle: Vehicle) -> None:
    """Queue the fleet row's update to the vehicle's new state (same transaction as its events)."""
    uow.execute(fleet.update().where(fleet.c.id == vehicle.id).values(
        status=vehicle.status, position_x=vehicle.position_x, position_y=vehicle.position_y,
        reserved_for=vehicle.reserved_for,
    ))
