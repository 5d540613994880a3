"""The a-bike digital twin: vehicles that follow renters, return to stations, come when called, charge.

Every state change goes through ``change``, which records a full VehicleUpdated, mirrors it into
``fleet`` and keeps the vehicle's two durable timers in step with its status:

* ``tick-<id>`` fires every TICK_SECONDS of platform time while the vehicle is RETURNING, COMING
  or CHARGING; each firing schedules the next one from its own due time, so the chain never
  drifts and catches up after a pause.
* ``wait-<id>`` fires WAIT_SECONDS after a called a-bike arrived, if it is still WAITING.

Timer ids are per vehicle, so re-arming replaces and there is at most one chain per vehicle;
handlers still re-check the loaded state because a timer may fire after the state moved on.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from sqlalchemy import select

from ebike.contracts.events import (
    ABikeArrived,
    ABikeRequestCancelled,
    ABikeRequested,
    CustomerPositionUpdated,
    Point,
    RentalStarted,
    RentalStopped,
    StationCreated,
    StationDeleted,
    StationUpdated,
    VehicleStatus,
)
from ebike.services.vehicles.geometry import distance, id_order, nearest, step_toward
from ebike.services.vehicles.model import (
    TICKING,
    RenterMoved,
    RenterRentalChanged,
    State,
    Vehicle,
    fleet,
    fleet_row,
    load_renter,
    load_vehicle,
    mirror,
    service,
    twin_stations,
)
from junction.uow import UnitOfWork

TICK_SECONDS: Final = 1.0
STEP: Final = 1.0  # units moved per tick
DRAIN_PER_UNIT: Final = 0.002  # battery lost per unit travelled (EBIKE, ABIKE)
CHARGE_PER_TICK: Final = 0.01
LOW_BATTERY: Final = 0.2  # below this a bike arriving at a station charges
CHARGED: Final = 0.8  # a charging bike is available again from this level
WAIT_SECONDS: Final = 300.0  # how long a called a-bike waits for its caller
TICK: Final = "vehicles.tick"
WAIT_EXPIRED: Final = "vehicles.wait-expired"


def tick_timer(vehicle_id: str) -> str:
    """The id of a vehicle's movement/charging timer."""
    return f"tick-{vehicle_id}"


def wait_timer(vehicle_id: str) -> str:
    """The id of a waiting a-bike's expiry timer."""
    return f"wait-{vehicle_id}"


def level(battery: float) -> float:
    """A battery level clamped to [0, 1] and rounded, so repeated steps hit thresholds exactly."""
    return round(min(1.0, max(0.0, battery)), 6)


def drained(vehicle: Vehicle, travelled: float) -> float:
    """The battery after travelling ``travelled`` units; BIKEs have no battery to drain."""
    return vehicle.battery if vehicle.type == "BIKE" else level(vehicle.battery - DRAIN_PER_UNIT * travelled)


# -- the one way state changes --------------------------------------------------------------------
def change(uow: UnitOfWork, vehicle: Vehicle, at: float, new: State) -> None:
    """Record ``new`` as the vehicle's state and start or stop its timers to match, from instant ``at``."""
    old = vehicle.status
    vehicle.update(new)
    mirror(uow, vehicle)
    payload = {"vehicleId": vehicle.id}
    if new.status in TICKING and old not in TICKING:
        uow.schedule(at + TICK_SECONDS, TICK, payload, timer_id=tick_timer(vehicle.id))
    elif new.status not in TICKING and old in TICKING:
        uow.cancel(tick_timer(vehicle.id))
    if new.status == "WAITING" and old != "WAITING":
        uow.schedule(at + WAIT_SECONDS, WAIT_EXPIRED, {**payload, "customerId": new.reserved_for},
                     timer_id=wait_timer(vehicle.id))
    elif old == "WAITING" and new.status != "WAITING":
        uow.cancel(wait_timer(vehicle.id))


def arrive(uow: UnitOfWork, vehicle: Vehicle, at: float, state: State) -> None:
    """Record ``state``, at its target: a called a-bike waits; at a station a bike charges or is available."""
    if state.status == "COMING":
        assert state.reserved_for is not None  # COMING is only ever entered by reserve()
        vehicle.record(ABikeArrived(id=vehicle.id, customer_id=state.reserved_for))
        change(uow, vehicle, at, replace(state, status="WAITING", target=None))
    else:
        status: VehicleStatus = "CHARGING" if state.battery < LOW_BATTERY else "AVAILABLE"
        change(uow, vehicle, at, replace(state, status=status, target=None, reserved_for=None))


def go(uow: UnitOfWork, vehicle: Vehicle, at: float, state: State) -> None:
    """Record a moving ``state``, arriving at once when the vehicle already is at the target."""
    assert state.target is not None
    if distance(state.position, state.target) == 0:
        arrive(uow, vehicle, at, state)
    else:
        change(uow, vehicle, at, state)


async def nearest_station(uow: UnitOfWork, origin: Point) -> Point | None:
    """The nearest station's position (ties → lowest id), or None when there is no station."""
    rows = await uow.fetch_all(select(twin_stations))
    found = nearest(origin, ((r["id"], Point(x=r["position_x"], y=r["position_y"])) for r in rows))
    return found[1] if found else None


async def send_to_station(uow: UnitOfWork, vehicle: Vehicle, at: float) -> None:
    """Drop any reservation and head for the nearest station; with no station, stay AVAILABLE here."""
    station = await nearest_station(uow, vehicle.position)
    if station is None:
        change(uow, vehicle, at, replace(vehicle.state, status="AVAILABLE", target=None, reserved_for=None))
        return
    go(uow, vehicle, at, replace(vehicle.state, status="RETURNING", target=station, reserved_for=None))


# -- a-bike requests (used by the HTTP routes and by rentals' events) -------------------------------
async def request_of(uow: UnitOfWork, customer_id: str) -> Any | None:
    """The fleet row of the a-bike reserved for the customer, if any."""
    return await fleet_row(uow, fleet.c.reserved_for == customer_id)


async def nearest_available_abike(uow: UnitOfWork, origin: Point) -> tuple[Vehicle, Any] | None:
    """The nearest AVAILABLE ABIKE (ties → lowest id) with its fleet row, checked on the aggregate."""
    rows = await uow.fetch_all(select(fleet).where(fleet.c.type == "ABIKE", fleet.c.status == "AVAILABLE"))
    ordered = sorted(rows, key=lambda r: (distance(origin, Point(x=r["position_x"], y=r["position_y"])),
                                          id_order(r["id"])))
    for row in ordered:
        vehicle = await load_vehicle(uow, row["id"])
        if vehicle is not None and vehicle.status == "AVAILABLE":
            return vehicle, row
    return None


def reserve(uow: UnitOfWork, vehicle: Vehicle, customer_id: str, position: Point, at: float) -> None:
    """Send an available a-bike to the customer (its target stays put even if the customer moves)."""
    vehicle.record(ABikeRequested(id=vehicle.id, customer_id=customer_id, position_x=position.x,
                                  position_y=position.y))
    go(uow, vehicle, at, replace(vehicle.state, status="COMING", target=position, reserved_for=customer_id))


async def release(uow: UnitOfWork, vehicle: Vehicle, at: float) -> None:
    """End the vehicle's a-bike request (cancelled or expired): it returns to the nearest station."""
    assert vehicle.reserved_for is not None
    vehicle.record(ABikeRequestCancelled(id=vehicle.id, customer_id=vehicle.reserved_for))
    await send_to_station(uow, vehicle, at)


# -- timers ----------------------------------------------------------------------------------------
@service.timer(TICK)
async def on_tick(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """One tick of a moving or charging vehicle; schedules the next from this tick's own due time."""
    vehicle = await load_vehicle(uow, payload["vehicleId"])
    if vehicle is None or vehicle.status not in TICKING:
        return  # a stale timer: the vehicle stopped or went away meanwhile
    at = uow.event_time().timestamp()
    if vehicle.status == "CHARGING":
        battery = level(vehicle.battery + CHARGE_PER_TICK)
        change(uow, vehicle, at, replace(vehicle.state, battery=battery,
                                         status="AVAILABLE" if battery >= CHARGED else "CHARGING"))
    else:
        assert vehicle.target is not None  # moving statuses always carry a target
        position = step_toward(vehicle.position, vehicle.target, STEP)
        moved = replace(vehicle.state, position=position,
                        battery=drained(vehicle, distance(vehicle.position, position)))
        if position == vehicle.target:
            arrive(uow, vehicle, at, moved)
        else:
            change(uow, vehicle, at, moved)
    if vehicle.status in TICKING:  # a fresh payload: drop the platform's retry bookkeeping, if any
        uow.schedule(at + TICK_SECONDS, TICK, {"vehicleId": vehicle.id}, timer_id=tick_timer(vehicle.id))


@service.timer(WAIT_EXPIRED)
async def on_wait_expired(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """Nobody rented the called a-bike in time: the request lapses and the bike returns."""
    vehicle = await load_vehicle(uow, payload["vehicleId"])
    if vehicle is None or vehicle.status != "WAITING" or vehicle.reserved_for != payload["customerId"]:
        return
    await release(uow, vehicle, uow.event_time().timestamp())


# -- rentals ---------------------------------------------------------------------------------------
@service.on("rentals", RentalStarted, RentalStopped)
async def on_rental(event: RentalStarted | RentalStopped, uow: UnitOfWork) -> None:
    """A rental started (the vehicle is RENTED) or stopped (an ABIKE returns, others are AVAILABLE)."""
    at = uow.event_time().timestamp()
    vehicle = await load_vehicle(uow, event.vehicle_id)
    if vehicle is None:
        return  # deleted, or not ours: nothing to move
    match event:
        case RentalStarted():
            other = await fleet_row(uow, fleet.c.reserved_for == event.customer_id, fleet.c.id != vehicle.id)
            called = await load_vehicle(uow, other["id"]) if other else None
            if called is not None:  # the customer rode off on another bike: their a-bike is not needed
                await release(uow, called, at)
            if vehicle.reserved_for is not None and vehicle.reserved_for != event.customer_id:
                # rentals let another customer take this reserved a-bike: that request is gone
                vehicle.record(ABikeRequestCancelled(id=vehicle.id, customer_id=vehicle.reserved_for))
            rented = replace(vehicle.state, status="RENTED", target=None, reserved_for=None)
            renter = await load_renter(uow, event.customer_id)
            renter.record(RenterRentalChanged(id=event.customer_id, rental_id=event.id, vehicle_id=vehicle.id,
                                              started=True, at=at))
            moved = renter.position_since(at)
            if moved is not None:  # the renter's first move of this rental was handled before the rental
                rented = followed(vehicle, rented, moved)
            change(uow, vehicle, at, rented)
            uow.execute(fleet.update().where(fleet.c.id == vehicle.id).values(
                renter=event.customer_id, rental_id=event.id, rented_since=at))
        case RentalStopped():
            row = await fleet_row(uow, fleet.c.id == vehicle.id)
            if row is None or row["rental_id"] != event.id:
                return  # not the rental this vehicle is in
            uow.execute(fleet.update().where(fleet.c.id == vehicle.id).values(
                renter=None, rental_id=None, rented_since=None))
            renter = await load_renter(uow, event.customer_id)
            renter.record(RenterRentalChanged(id=event.customer_id, rental_id=event.id, vehicle_id=vehicle.id,
                                              started=False, at=at))
            last = renter.position_since(row["rented_since"])
            if last is not None and last != vehicle.position:  # a move handled after the stop's own feed caught up
                change(uow, vehicle, at, followed(vehicle, vehicle.state, last))
            if vehicle.type == "ABIKE":
                await send_to_station(uow, vehicle, at)
            else:
                change(uow, vehicle, at, replace(vehicle.state, status="AVAILABLE", target=None))


@service.on("customers", CustomerPositionUpdated)
async def follow_renter(event: CustomerPositionUpdated, uow: UnitOfWork) -> None:
    """A rented vehicle moves with its renter, losing battery for the distance (BIKEs excepted)."""
    at = uow.event_time().timestamp()
    renter = await load_renter(uow, event.id)
    if renter.moved_at is not None and renter.moved_at > at:
        return  # a later move is already known: this one arrived late
    position = Point(x=event.position_x, y=event.position_y)
    renter.record(RenterMoved(id=event.id, position_x=position.x, position_y=position.y, at=at))
    row = await fleet_row(uow, fleet.c.renter == event.id, fleet.c.status == "RENTED")
    if row is not None and at >= row["rented_since"]:
        vehicle = await load_vehicle(uow, row["id"])
        if vehicle is not None and vehicle.status == "RENTED":
            change(uow, vehicle, at, followed(vehicle, vehicle.state, position))
        return
    left = renter.left_behind(at)
    if left is not None:  # the rental's stop was handled first: the vehicle was left where this move says
        vehicle = await load_vehicle(uow, left)
        if vehicle is not None and vehicle.status == "AVAILABLE" and vehicle.type != "ABIKE":
            change(uow, vehicle, at, followed(vehicle, vehicle.state, position))
    # otherwise not renting (yet: the rental may still be on its way), or a move from before a rental


def followed(vehicle: Vehicle, state: State, position: Point) -> State:
    """``state`` moved to the renter's ``position``, with the battery drained for the distance."""
    return replace(state, position=position, battery=drained(vehicle, distance(state.position, position)))


# -- stations (where returning a-bikes go) -----------------------------------------------------------
@service.on("stations", StationCreated, StationUpdated, StationDeleted)
async def track_station(event: StationCreated | StationUpdated | StationDeleted, uow: UnitOfWork) -> None:
    """Keep the twin's copy of the stations (delete + insert is a portable upsert)."""
    uow.execute(twin_stations.delete().where(twin_stations.c.id == event.id))
    if not isinstance(event, StationDeleted):
        uow.execute(twin_stations.insert().values(id=event.id, position_x=event.position_x,
                                                  position_y=event.position_y))


__all__ = ["nearest_available_abike", "release", "request_of", "reserve"]
