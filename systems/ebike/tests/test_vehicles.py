"""vehicles: the fleet contract, the read model's rental view, and vehicles following their renters.

Rentals and customers are written concurrently by others, so their events are appended straight
into their stores here (the events are the published contract, not their HTTP routes).
"""

from __future__ import annotations

from typing import Any

from ebike.contracts.api import rfc3339
from ebike.contracts.events import CostUpdated, CustomerPositionUpdated, RentalStarted, RentalStopped
from ebike.tests.conftest import Ebike
from junction.events import Event


# -- helpers (test_abike imports these) ------------------------------------------------------------
async def publish(ebike: Ebike, service: str, stream: str, event: Event) -> None:
    """Append ``event`` to another service's log, as that service would, and let consumers catch up."""
    uow = ebike.runtime.service(service).uow()
    uow.append(stream, event)
    await uow.commit()
    await ebike.settle()


async def create(ebike: Ebike, type_: str, x: float, y: float) -> dict[str, Any]:
    """Create a vehicle through the contract and wait for the read model."""
    created: dict[str, Any] = await ebike.call("vehicles", "PUT", "/vehicles",
                                               {"type": type_, "positionX": x, "positionY": y})
    await ebike.settle()
    return created


async def vehicle(ebike: Ebike, vehicle_id: str) -> dict[str, Any]:
    """GET /vehicles/{id}."""
    found: dict[str, Any] = await ebike.call("vehicles", "GET", f"/vehicles/{vehicle_id}")
    return found


async def available(ebike: Ebike, customer: str | None = None) -> list[str]:
    """Ids listed by GET /vehicles/available (for ``customer`` when given)."""
    query = f"?customerId={customer}" if customer else ""
    return [v["id"] for v in await ebike.call("vehicles", "GET", f"/vehicles/available{query}")]


async def start_rental(ebike: Ebike, rental_id: str, customer: str, bike: dict[str, Any]) -> None:
    """Rentals' RentalStarted for ``bike``."""
    await publish(ebike, "rentals", f"rental-{rental_id}", RentalStarted(
        id=rental_id, customer_id=customer, vehicle_id=bike["id"], vehicle_type=bike["type"],
        start=rfc3339(ebike.clock.now())))


async def stop_rental(ebike: Ebike, rental_id: str, customer: str, bike: dict[str, Any]) -> None:
    """Rentals' RentalStopped for ``bike``."""
    now = rfc3339(ebike.clock.now())
    await publish(ebike, "rentals", f"rental-{rental_id}",
                  RentalStopped(id=rental_id, customer_id=customer, vehicle_id=bike["id"], start=now, end=now))


async def move_customer(ebike: Ebike, customer: str, x: float, y: float) -> None:
    """Customers' CustomerPositionUpdated."""
    await publish(ebike, "customers", f"customer-{customer}",
                  CustomerPositionUpdated(id=customer, position_x=x, position_y=y))


# -- tests -----------------------------------------------------------------------------------------
async def test_create_get_list_delete(ebike: Ebike) -> None:
    created = await create(ebike, "EBIKE", 0, 0)
    assert created | {"id": "", "createdAt": "", "updatedAt": ""} == {
        "id": "", "type": "EBIKE", "positionX": 0.0, "positionY": 0.0, "battery": 1.0, "available": True,
        "status": "AVAILABLE", "target": None, "reservedFor": None, "activeRental": None,
        "createdAt": "", "updatedAt": ""}
    assert await ebike.call("vehicles", "GET", "/vehicles") == [created]  # the command's answer = the view's
    assert await vehicle(ebike, created["id"]) == created
    assert await available(ebike) == [created["id"]]

    deleted = await ebike.call("vehicles", "DELETE", f"/vehicles/{created['id']}")
    assert deleted["id"] == created["id"] and deleted["type"] == "EBIKE"
    await ebike.settle()
    assert await ebike.call("vehicles", "GET", "/vehicles") == []
    for method in ("GET", "DELETE"):
        missing = await ebike.call("vehicles", method, f"/vehicles/{created['id']}", expect=404)
        assert missing == {"error": "vehicle not found"}


async def test_bad_bodies_are_rejected(ebike: Ebike) -> None:
    for body in ({"type": "CAR", "positionX": 1, "positionY": 1}, {"type": "BIKE", "positionX": 1}):
        bad = await ebike.call("vehicles", "PUT", "/vehicles", body, expect=422)
        assert bad["error"] == "validation failed"
    assert await ebike.call("vehicles", "GET", "/vehicles") == []


async def test_active_rental_view_and_in_use(ebike: Ebike) -> None:
    bike, ebike_ = await create(ebike, "BIKE", 1, 1), await create(ebike, "EBIKE", 2, 2)
    await start_rental(ebike, "r1", "c1", ebike_)
    rented = await vehicle(ebike, ebike_["id"])
    assert rented["status"] == "RENTED" and rented["available"] is False
    assert rented["activeRental"] == {"id": "r1", "vehicleId": ebike_["id"], "customerId": "c1",
                                      "vehicleType": "EBIKE", "start": rfc3339(ebike.clock.now()), "cost": 0}
    assert await available(ebike) == [bike["id"]]
    assert await ebike.call("vehicles", "DELETE", f"/vehicles/{ebike_['id']}", expect=409) == {
        "error": "vehicle is in use"}

    await publish(ebike, "rentals", "rental-r1", CostUpdated(
        id="r1", customer_id="c1", vehicle_id=ebike_["id"], vehicle_type="EBIKE", start="", cost=120))
    assert (await vehicle(ebike, ebike_["id"]))["activeRental"]["cost"] == 120
    await stop_rental(ebike, "r0", "c1", ebike_)  # another rental's stop changes nothing
    assert (await vehicle(ebike, ebike_["id"]))["activeRental"]["id"] == "r1"

    await stop_rental(ebike, "r1", "c1", ebike_)
    returned = await vehicle(ebike, ebike_["id"])
    assert returned["activeRental"] is None and returned["status"] == "AVAILABLE" and returned["target"] is None
    assert await available(ebike) == [bike["id"], ebike_["id"]]
    await ebike.call("vehicles", "DELETE", f"/vehicles/{ebike_['id']}")


async def test_rented_vehicles_follow_their_renters(ebike: Ebike) -> None:
    ebike_, bike = await create(ebike, "EBIKE", 0, 0), await create(ebike, "BIKE", 0, 0)
    await start_rental(ebike, "r1", "c1", ebike_)
    await start_rental(ebike, "r2", "c2", bike)
    assert (await vehicle(ebike, ebike_["id"]))["positionX"] == 0  # no jump at rental start

    await move_customer(ebike, "c1", 3, 4)
    await move_customer(ebike, "c2", 6, 8)
    await move_customer(ebike, "c3", 9, 9)  # not renting: moves nothing
    followed, pedalled = await vehicle(ebike, ebike_["id"]), await vehicle(ebike, bike["id"])
    assert (followed["positionX"], followed["positionY"], followed["battery"]) == (3, 4, 0.99)
    assert (pedalled["positionX"], pedalled["positionY"], pedalled["battery"]) == (6, 8, 1.0)
    assert followed["status"] == "RENTED"

    await stop_rental(ebike, "r1", "c1", ebike_)
    await ebike.advance(1)  # (a move reported at the very instant of the stop would still belong to the rental)
    await move_customer(ebike, "c1", 50, 50)  # the rental is over: the e-bike stays where it was left
    left = await vehicle(ebike, ebike_["id"])
    assert (left["positionX"], left["positionY"], left["status"]) == (3, 4, "AVAILABLE")


async def test_a_move_handled_before_its_rental_still_moves_the_vehicle(ebike: Ebike) -> None:
    """Positions and rentals arrive over two feeds (two Kafka topics when distributed), in either order."""
    early, late = await create(ebike, "EBIKE", 0, 0), await create(ebike, "EBIKE", 0, 0)
    await move_customer(ebike, "c1", 1, 1)  # reported before c1's rental began: not where the bike goes
    await ebike.advance(1)
    await move_customer(ebike, "c1", 3, 4)  # the rental's first move, handled before the rental itself
    await start_rental(ebike, "r1", "c1", early)
    moved = await vehicle(ebike, early["id"])
    assert (moved["positionX"], moved["positionY"], moved["battery"], moved["status"]) == (3, 4, 0.99, "RENTED")

    await ebike.advance(1)
    await move_customer(ebike, "c2", 7, 7)
    await ebike.advance(1)
    await start_rental(ebike, "r2", "c2", late)
    assert (await vehicle(ebike, late["id"]))["positionX"] == 0  # a move from before the rental does not count


async def test_stopped_abike_with_no_station_stays_available(ebike: Ebike) -> None:
    abike = await create(ebike, "ABIKE", 5, 5)
    await start_rental(ebike, "r1", "c1", abike)
    await move_customer(ebike, "c1", 8, 9)
    await stop_rental(ebike, "r1", "c1", abike)
    await ebike.advance(5)
    stayed = await vehicle(ebike, abike["id"])
    assert (stayed["positionX"], stayed["positionY"], stayed["status"], stayed["target"]) == (8, 9, "AVAILABLE", None)



async def test_a_vehicle_rented_a_moment_ago_cannot_be_deleted(ebike: Ebike) -> None:
    """The twin learns of rentals from the rentals log, with a lag; the delete asks rentals itself."""
    vehicle = await ebike.call("vehicles", "PUT", "/vehicles", {"type": "BIKE", "positionX": 1, "positionY": 1})
    payment = await ebike.call("accounting", "PUT", "/payments", {"customerId": "c-race", "amount": 500})
    await ebike.call("accounting", "PATCH", f"/payments/{payment['id']}", {"status": "CONFIRMED"})
    await ebike.settle()
    await ebike.runtime.pause_consumers("vehicles", source="rentals")  # the lag, made long
    await ebike.call("rentals", "POST", "/rentals/start", {"customerId": "c-race", "vehicleId": vehicle["id"]})
    refused = await ebike.call("vehicles", "DELETE", f"/vehicles/{vehicle['id']}", expect=409)
    assert refused == {"error": "vehicle is in use"}
