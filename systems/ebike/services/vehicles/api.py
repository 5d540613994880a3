"""The vehicles HTTP contract: the fleet (create, list, delete) and a-bike requests.

Reads answer from the ``vehicles`` read model; commands decide on the Vehicle aggregate and
answer from it, so a command's answer never waits for the projection.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from ebike.contracts.api import rfc3339
from ebike.contracts.events import Point, VehicleCreated, VehicleDeleted
from ebike.contracts.fees import UNLOCK_FEE
from ebike.services.vehicles import view
from ebike.services.vehicles.dto import ABikeRequestIn, VehicleIn, VehicleOut
from ebike.services.vehicles.model import IN_USE, Vehicle, fleet, fleet_row, load_vehicle, service
from ebike.services.vehicles.twin import (
    nearest_available_abike,
    release,
    request_of,
    reserve,
    tick_timer,
    wait_timer,
)
from junction.errors import BadRequest, Conflict, NotFound
from junction.uow import UnitOfWork

VEHICLE_NOT_FOUND = "vehicle not found"


def _out(vehicle: Vehicle, created_at: str, updated_at: str) -> VehicleOut:
    """The DTO of a vehicle as a command left it (no active rental: commands never touch rented ones)."""
    return VehicleOut(
        id=vehicle.id, type=vehicle.type, position_x=vehicle.position_x, position_y=vehicle.position_y,
        battery=vehicle.battery, available=vehicle.status == "AVAILABLE", status=vehicle.status,
        target=vehicle.target, reserved_for=vehicle.reserved_for, active_rental=None, created_at=created_at,
        updated_at=updated_at)


@service.route("GET", "/vehicles")
async def list_vehicles(uow: UnitOfWork) -> list[VehicleOut]:
    """Every vehicle, whatever its status."""
    return await view.all_vehicles(uow)


@service.route("GET", "/vehicles/available")
async def list_available(request: Request, uow: UnitOfWork) -> list[VehicleOut]:
    """Vehicles one can rent now; ``?customerId=`` adds the a-bike waiting for that customer."""
    return await view.available_vehicles(uow, request.query_params.get("customerId") or None)


@service.route("GET", "/vehicles/{vehicle_id}")
async def get_vehicle(vehicle_id: str, uow: UnitOfWork) -> VehicleOut:
    """One vehicle; 404 when unknown."""
    found = await view.one_vehicle(uow, vehicle_id)
    if found is None:
        raise NotFound(VEHICLE_NOT_FOUND)
    return found


@service.route("PUT", "/vehicles")
async def create_vehicle(body: VehicleIn, uow: UnitOfWork) -> VehicleOut:
    """A new vehicle with a full battery, AVAILABLE where it is put."""
    vehicle = await uow.create(Vehicle, uow.new_id())
    vehicle.record(VehicleCreated(id=vehicle.id, type=body.type, position_x=body.position_x,
                                  position_y=body.position_y, battery=1.0))
    now = rfc3339(uow.now())
    uow.execute(fleet.insert().values(id=vehicle.id, type=body.type, status=vehicle.status,
                                      position_x=body.position_x, position_y=body.position_y, created_at=now))
    return _out(vehicle, now, now)


@service.route("DELETE", "/vehicles/{vehicle_id}")
async def delete_vehicle(vehicle_id: str, uow: UnitOfWork) -> VehicleOut:
    """Remove a vehicle that nobody rides, has called or is waiting for; the deleted DTO."""
    vehicle = await load_vehicle(uow, vehicle_id)
    row = await fleet_row(uow, fleet.c.id == vehicle_id)
    if vehicle is None or row is None:
        raise NotFound(VEHICLE_NOT_FOUND)
    if vehicle.status in IN_USE:
        raise Conflict("vehicle is in use")
    # The twin learns of a rental from the rentals log, a moment after it starts: ask rentals itself.
    if await uow.call("rentals").get(f"/vehicles/{quote(vehicle_id, safe='')}/rentals/active") is not None:
        raise Conflict("vehicle is in use")
    vehicle.record(VehicleDeleted(id=vehicle.id))
    uow.execute(fleet.delete().where(fleet.c.id == vehicle_id))
    uow.cancel(tick_timer(vehicle_id))  # a CHARGING bike may be deleted: stop its charging ticks
    uow.cancel(wait_timer(vehicle_id))
    return _out(vehicle, row["created_at"], rfc3339(uow.now()))


@service.route("POST", "/vehicles/requests")
async def request_abike(body: ABikeRequestIn, uow: UnitOfWork) -> VehicleOut:
    """Call the nearest available a-bike to a position; the bike that comes."""
    customer = body.customer_id
    path = f"/customers/{quote(customer, safe='')}"
    # Upstream errors (UpstreamError) pass through with the called service's status and message.
    if await uow.call("rentals").get(f"{path}/rentals/active") is not None:
        raise Conflict("customer already has an active rental")
    balance = await uow.call("accounting").get(f"{path}/credit-balance")
    if balance["creditBalance"] < UNLOCK_FEE["ABIKE"]:
        raise BadRequest(f"customer {customer} does not have enough credit balance")
    # The commit checks the chosen vehicle's expected version and the unique fleet.reserved_for: when a
    # racing request committed first, the platform runs this handler again on fresh state.
    if await request_of(uow, customer) is not None:
        raise Conflict("a-bike already requested")
    position = Point(x=body.position_x, y=body.position_y)
    found = await nearest_available_abike(uow, position)
    if found is None:
        raise Conflict("no a-bike available")
    vehicle, row = found
    reserve(uow, vehicle, customer, position, uow.event_time().timestamp())
    return _out(vehicle, row["created_at"], rfc3339(uow.now()))


@service.route("DELETE", "/vehicles/requests/{customer_id}")
async def cancel_request(customer_id: str, uow: UnitOfWork) -> bool:
    """Release the customer's called a-bike (it returns to the nearest station); true."""
    row = await request_of(uow, customer_id)
    vehicle = await load_vehicle(uow, row["id"]) if row else None
    if vehicle is None or vehicle.reserved_for != customer_id:
        raise NotFound("a-bike request not found")
    await release(uow, vehicle, uow.event_time().timestamp())
    return True
