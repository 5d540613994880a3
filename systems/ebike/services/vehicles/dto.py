"""Bodies of the vehicles HTTP contract (camelCase on the wire)."""

from __future__ import annotations

from pydantic import Field

from ebike.contracts.api import ActiveRentalOut, Dto
from ebike.contracts.events import Point, VehicleStatus, VehicleType


class VehicleIn(Dto):
    """PUT /vehicles: a new vehicle (positions may be 0)."""

    type: VehicleType
    position_x: float = Field(allow_inf_nan=False)
    position_y: float = Field(allow_inf_nan=False)


class ABikeRequestIn(Dto):
    """POST /vehicles/requests: a customer calls an a-bike to a position."""

    customer_id: str = Field(min_length=1)
    position_x: float = Field(allow_inf_nan=False)
    position_y: float = Field(allow_inf_nan=False)


class VehicleOut(Dto):
    """VehicleDTO."""

    id: str
    type: VehicleType
    position_x: float
    position_y: float
    battery: float
    available: bool
    status: VehicleStatus
    target: Point | None
    reserved_for: str | None
    active_rental: ActiveRentalOut | None
    created_at: str
    updated_at: str
