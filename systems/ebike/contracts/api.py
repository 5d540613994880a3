"""HTTP conventions shared by the ebike services' internal contracts (spec section 5)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ebike.contracts.events import VehicleType


class Dto(BaseModel):
    """Base of request and response bodies: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)


def rfc3339(moment: datetime) -> str:
    """A timestamp as the contracts print it."""
    return moment.isoformat().replace("+00:00", "Z")


class ActiveRentalOut(Dto):
    """The rental a customer or a vehicle is in (CustomerRental and VehicleRental of the API)."""

    id: str
    vehicle_id: str
    customer_id: str
    vehicle_type: VehicleType
    start: str
    cost: int
