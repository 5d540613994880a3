"""ebike events: the reference's names and payload fields (spec section 3), plus the a-bike twin's.

Payloads serialise in camelCase (``customerId``, ``positionX``) as the reference does. Ids are
Snowflakes in Base62 text; timestamps are RFC 3339 text from the platform clock.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from junction.events import Event

Role = Literal["ADMIN", "CUSTOMER"]
PaymentStatus = Literal["PENDING", "CONFIRMED", "REJECTED"]
VehicleType = Literal["BIKE", "EBIKE", "ABIKE"]
VehicleStatus = Literal["AVAILABLE", "RENTED", "RETURNING", "COMING", "WAITING", "CHARGING"]


class Point(BaseModel):
    """A position on the city map."""

    model_config = ConfigDict(frozen=True)

    x: float
    y: float


# -- auth ----------------------------------------------------------------------------------------
class UserRegistered(Event):
    id: str
    username: str
    role: Role


class UserLoggedIn(Event):
    id: str
    username: str
    timestamp: str


# -- accounting ----------------------------------------------------------------------------------
class PaymentCreated(Event):
    id: str
    customer_id: str
    amount: int
    status: PaymentStatus


class PaymentUpdated(Event):
    id: str
    customer_id: str
    amount: int
    status: PaymentStatus


class PaymentDeleted(Event):
    id: str
    customer_id: str
    amount: int
    status: PaymentStatus


class ExpenseCreated(Event):
    id: str
    customer_id: str
    rental_id: str | None
    amount: int


class PreliminaryExpenseCreated(Event):
    id: str
    inquiry_id: str
    customer_id: str
    amount: int
    expires_at: str


class PreliminaryExpenseFinalized(Event):
    id: str
    inquiry_id: str
    customer_id: str
    rental_id: str
    amount: int


# -- rentals -------------------------------------------------------------------------------------
class RentalStarted(Event):
    id: str
    customer_id: str
    vehicle_id: str
    vehicle_type: VehicleType
    start: str
    end: str | None = None


class RentalStopped(Event):
    id: str
    customer_id: str
    vehicle_id: str
    start: str
    end: str


class CostUpdated(Event):
    id: str
    customer_id: str
    vehicle_id: str
    vehicle_type: VehicleType
    start: str
    cost: int


# -- stations ------------------------------------------------------------------------------------
class StationCreated(Event):
    id: str
    name: str
    position_x: float
    position_y: float


class StationUpdated(Event):
    id: str
    name: str
    position_x: float
    position_y: float


class StationDeleted(Event):
    id: str


# -- vehicles ------------------------------------------------------------------------------------
class VehicleCreated(Event):
    id: str
    type: VehicleType
    position_x: float
    position_y: float
    battery: float
    available: bool = True


class VehicleUpdated(Event):
    id: str
    position_x: float
    position_y: float
    battery: float
    status: VehicleStatus = "AVAILABLE"
    target: Point | None = None
    reserved_for: str | None = None


class VehicleDeleted(Event):
    id: str


class ABikeRequested(Event):
    id: str  # the vehicle
    customer_id: str
    position_x: float
    position_y: float


class ABikeArrived(Event):
    id: str
    customer_id: str


class ABikeRequestCancelled(Event):
    id: str
    customer_id: str


# -- customers (published on the reference's "vehicles" topic) -----------------------------------
class CustomerPositionUpdated(Event):
    id: str
    position_x: float
    position_y: float


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and issubclass(value, Event)
           and value is not Event] + ["Point", "to_camel"]
