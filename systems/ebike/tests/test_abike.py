"""The autonomous a-bike twin: returning, charging, requests, waiting, cancelling, races and replay.

requestABike asks rentals (``GET /customers/{id}/rentals/active``) and accounting
(``GET /customers/{id}/credit-balance``). Most tests put ``ContractStub`` in front of those two
services: it answers exactly those documented routes from test-controlled data and forwards every
other path to the real service. The tests marked LIVE use the real rentals and accounting
services instead (written concurrently by other engineers): they fail until those routes exist.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from ebike.contracts.events import Point
from ebike.services.vehicles.twin import nearest_available_abike, reserve
from ebike.tests.conftest import Ebike
from ebike.tests.test_vehicles import (
    available,
    create,
    move_customer,
    start_rental,
    stop_rental,
    vehicle,
)
from junction.errors import ConcurrencyError


class Upstream:
    """How a test gives a customer credit or an active rental (the two facts requestABike checks)."""

    async def give_credit(self, customer: str, cents: int) -> None:
        """Make the customer's credit balance ``cents`` higher."""
        raise NotImplementedError

    async def rent(self, customer: str, bike: dict[str, Any]) -> None:
        """Give the customer an active rental of ``bike``."""
        raise NotImplementedError


class ContractStub(Upstream):
    """Answers rentals' and accounting's two documented routes from dicts; the rest goes to the real apps."""

    def __init__(self, ebike: Ebike) -> None:
        self.ebike = ebike
        self.balances: dict[str, int] = {}
        self.active: dict[str, dict[str, Any]] = {}

    async def install(self) -> None:
        """Put the stubs in front of the real services in the runtime's transport."""
        async def active_rental(request: Request) -> JSONResponse:
            return JSONResponse(self.active.get(request.path_params["customer_id"]))

        async def credit_balance(request: Request) -> JSONResponse:
            customer = request.path_params["customer_id"]
            return JSONResponse({"customerId": customer, "creditBalance": self.balances.get(customer, 0)})

        routes = {"rentals": Route("/customers/{customer_id}/rentals/active", active_rental),
                  "accounting": Route("/customers/{customer_id}/credit-balance", credit_balance)}
        transport = self.ebike.runtime.transport
        for name, route in routes.items():
            replaced = transport.client(name)
            transport.add_app(name, Starlette(routes=[route, Mount("", app=self.ebike.runtime.service(name).app)]))
            await replaced.http.aclose()

    async def give_credit(self, customer: str, cents: int) -> None:
        self.balances[customer] = self.balances.get(customer, 0) + cents

    async def rent(self, customer: str, bike: dict[str, Any]) -> None:
        self.active[customer] = {"id": f"rental-of-{customer}", "customerId": customer, "vehicleId": bike["id"],
                                 "start": "", "end": None, "cost": 0}


class LiveServices(Upstream):
    """LIVE: the real accounting (payments) and rentals (start) contracts of spec section 5."""

    def __init__(self, ebike: Ebike) -> None:
        self.ebike = ebike

    async def give_credit(self, customer: str, cents: int) -> None:
        payment = await self.ebike.call("accounting", "PUT", "/payments", {"customerId": customer, "amount": cents})
        await self.ebike.call("accounting", "PATCH", f"/payments/{payment['id']}", {"status": "CONFIRMED"})
        await self.ebike.settle()

    async def rent(self, customer: str, bike: dict[str, Any]) -> None:
        await self.ebike.call("rentals", "POST", "/rentals/start", {"customerId": customer, "vehicleId": bike["id"]})
        await self.ebike.settle()


@pytest.fixture
async def stub(ebike: Ebike) -> ContractStub:
    """The two upstream routes answered from test data."""
    installed = ContractStub(ebike)
    await installed.install()
    return installed


@pytest.fixture(params=["stub", "live"])
async def upstream(request: pytest.FixtureRequest, ebike: Ebike) -> Upstream:
    """Once against the stub, once LIVE against the real rentals and accounting."""
    if request.param == "stub":
        installed = ContractStub(ebike)
        await installed.install()
        return installed
    return LiveServices(ebike)


async def request_abike(ebike: Ebike, customer: str, x: float, y: float, expect: int = 200) -> dict[str, Any]:
    """POST /vehicles/requests."""
    answer: dict[str, Any] = await ebike.call("vehicles", "POST", "/vehicles/requests",
                                              {"customerId": customer, "positionX": x, "positionY": y}, expect=expect)
    return answer


async def stations(ebike: Ebike, *positions: tuple[float, float]) -> None:
    """Create stations through the stations contract and let the twin learn them."""
    for n, (x, y) in enumerate(positions):
        await ebike.call("stations", "PUT", "/stations", {"name": f"S{n}", "positionX": x, "positionY": y})
    await ebike.settle()


async def rent_refused(ebike: Ebike, customer: str, bike: dict[str, Any]) -> None:
    """The real rentals service refuses the customer this bike (it reads the twin's VehicleUpdated)."""
    await ebike.call("rentals", "POST", "/rentals/start", {"customerId": customer, "vehicleId": bike["id"]},
                     expect=409)


def where(found: dict[str, Any]) -> tuple[float, float, str]:
    """A vehicle's position and status."""
    return found["positionX"], found["positionY"], found["status"]


async def vehicle_events(ebike: Ebike, *types: str) -> list[str]:
    """The types of the vehicles log's events among ``types``, in order."""
    log = await ebike.runtime.service("vehicles").store.read_log(0, 100_000)
    return [e.type for e in log if e.type in types]


# -- E11 ---------------------------------------------------------------------------------------------
async def test_e11_autonomous_abike(ebike: Ebike, upstream: Upstream) -> None:
    """Spec E11 (LIVE in its "live" variant: needs the real rentals and accounting)."""
    await stations(ebike, (10, 0), (100, 0))
    abike = await create(ebike, "ABIKE", 0, 0)
    await start_rental(ebike, "r1", "c1", abike)
    await move_customer(ebike, "c1", 20, 0)
    assert where(await vehicle(ebike, abike["id"])) == (20, 0, "RENTED")

    # stop: the a-bike returns to the nearest station, one unit per second
    await stop_rental(ebike, "r1", "c1", abike)
    returning = await vehicle(ebike, abike["id"])
    assert where(returning) == (20, 0, "RETURNING") and returning["target"] == {"x": 10, "y": 0}
    assert returning["battery"] == 0.96 and returning["available"] is False
    assert abike["id"] not in await available(ebike)
    ticks_before = len(await vehicle_events(ebike, "VehicleUpdated"))
    await ebike.advance(9)
    assert where(await vehicle(ebike, abike["id"])) == (11, 0, "RETURNING")
    assert abike["id"] not in await available(ebike)
    await ebike.advance(1)
    back = await vehicle(ebike, abike["id"])
    assert where(back) == (10, 0, "AVAILABLE") and back["target"] is None and back["battery"] == 0.94
    assert len(await vehicle_events(ebike, "VehicleUpdated")) - ticks_before == 10  # one per tick
    assert abike["id"] in await available(ebike)

    # a customer at (50,50) calls it: it comes, then waits for that customer only
    await upstream.give_credit("c2", 1000)
    await upstream.give_credit("c3", 1000)
    coming = await request_abike(ebike, "c2", 50, 50)
    assert coming["id"] == abike["id"] and where(coming) == (10, 0, "COMING")
    assert coming["target"] == {"x": 50, "y": 50} and coming["reservedFor"] == "c2"
    await ebike.settle()
    assert abike["id"] not in await available(ebike, "c2")
    assert await request_abike(ebike, "c3", 60, 60, expect=409) == {"error": "no a-bike available"}
    await rent_refused(ebike, "c2", abike)  # not while it is still COMING
    await ebike.advance(64)  # 64.03 units away
    assert (await vehicle(ebike, abike["id"]))["status"] == "COMING"
    await ebike.advance(1)
    waiting = await vehicle(ebike, abike["id"])
    assert where(waiting) == (50, 50, "WAITING") and waiting["reservedFor"] == "c2" and waiting["target"] is None
    assert await available(ebike, "c2") == [abike["id"]]
    assert await available(ebike, "c3") == [] and await available(ebike) == []
    assert await request_abike(ebike, "c3", 60, 60, expect=409) == {"error": "no a-bike available"}
    await rent_refused(ebike, "c3", abike)
    assert await request_abike(ebike, "c2", 50, 50, expect=409) == {"error": "a-bike already requested"}

    # five minutes of platform time from arrival, then it goes back to the nearest station
    await ebike.advance(299)
    assert (await vehicle(ebike, abike["id"]))["status"] == "WAITING"
    await ebike.advance(1)
    expired = await vehicle(ebike, abike["id"])
    assert where(expired) == (50, 50, "RETURNING") and expired["reservedFor"] is None
    assert expired["target"] == {"x": 10, "y": 0}
    await ebike.advance(65)
    assert where(await vehicle(ebike, abike["id"])) == (10, 0, "AVAILABLE")

    # a cancelled request sends it back at once
    await request_abike(ebike, "c3", 10, 5)
    await ebike.advance(2)
    assert await ebike.call("vehicles", "DELETE", "/vehicles/requests/c3") is True
    await ebike.settle()
    cancelled = await vehicle(ebike, abike["id"])
    assert where(cancelled) == (10, 2, "RETURNING") and cancelled["reservedFor"] is None
    assert await ebike.call("vehicles", "DELETE", "/vehicles/requests/c3", expect=404) == {
        "error": "a-bike request not found"}
    await ebike.advance(2)
    assert where(await vehicle(ebike, abike["id"])) == (10, 0, "AVAILABLE")
    assert await vehicle_events(ebike, "ABikeRequested", "ABikeArrived", "ABikeRequestCancelled") == [
        "ABikeRequested", "ABikeArrived", "ABikeRequestCancelled", "ABikeRequested", "ABikeRequestCancelled"]


async def test_low_battery_charges_then_becomes_available(ebike: Ebike) -> None:
    await stations(ebike, (405, 0))
    abike = await create(ebike, "ABIKE", 0, 0)
    await start_rental(ebike, "r1", "c1", abike)
    await move_customer(ebike, "c1", 410, 0)  # 410 units: battery 1 - 0.82
    await stop_rental(ebike, "r1", "c1", abike)
    await ebike.advance(5)
    charging = await vehicle(ebike, abike["id"])
    assert where(charging) == (405, 0, "CHARGING") and charging["battery"] == 0.17
    assert charging["available"] is False and await available(ebike) == []
    await ebike.advance(62)  # +0.01 per tick
    still = await vehicle(ebike, abike["id"])
    assert where(still) == (405, 0, "CHARGING") and still["battery"] == 0.79
    await ebike.advance(1)
    charged = await vehicle(ebike, abike["id"])
    assert where(charged) == (405, 0, "AVAILABLE") and charged["battery"] == 0.8
    assert await available(ebike) == [abike["id"]]
    await ebike.advance(5)  # the charging ticks stopped
    assert (await vehicle(ebike, abike["id"]))["battery"] == 0.8


# -- request checks ----------------------------------------------------------------------------------
async def test_request_checks_in_order(ebike: Ebike, stub: ContractStub) -> None:
    bike = await create(ebike, "BIKE", 0, 0)
    await stub.rent("c1", bike)
    assert await request_abike(ebike, "c1", 1, 1, expect=409) == {"error": "customer already has an active rental"}
    assert await request_abike(ebike, "c2", 1, 1, expect=400) == {
        "error": "customer c2 does not have enough credit balance"}
    await stub.give_credit("c2", 199)
    await request_abike(ebike, "c2", 1, 1, expect=400)
    await stub.give_credit("c2", 1)  # exactly the ABIKE unlocking fee is enough
    assert await request_abike(ebike, "c2", 1, 1, expect=409) == {"error": "no a-bike available"}
    assert await ebike.call("vehicles", "DELETE", "/vehicles/requests/c2", expect=404) == {
        "error": "a-bike request not found"}
    bad = await ebike.call("vehicles", "POST", "/vehicles/requests", {"customerId": "c2", "positionX": 1}, expect=422)
    assert bad["error"] == "validation failed"


async def test_request_checks_against_live_services(ebike: Ebike) -> None:
    """LIVE: the real rentals and accounting services answer the two checks."""
    live = LiveServices(ebike)
    bike = await create(ebike, "BIKE", 0, 0)
    await create(ebike, "ABIKE", 5, 5)
    assert await request_abike(ebike, "c1", 1, 1, expect=400) == {
        "error": "customer c1 does not have enough credit balance"}
    await live.give_credit("c1", 1000)
    await live.rent("c1", bike)
    assert await request_abike(ebike, "c1", 1, 1, expect=409) == {"error": "customer already has an active rental"}


# -- reservations ------------------------------------------------------------------------------------
async def test_nearest_is_chosen_and_target_does_not_follow_the_caller(ebike: Ebike, stub: ContractStub) -> None:
    far, tie_low, tie_high = [await create(ebike, "ABIKE", x, 0) for x in (30, 10, -10)]
    ebike_ = await create(ebike, "EBIKE", 1, 0)  # nearer, but not an a-bike
    await stub.give_credit("c1", 500)
    coming = await request_abike(ebike, "c1", 0, 0)
    assert coming["id"] == tie_low["id"]  # equal distance: the lowest id
    await ebike.advance(3)
    await move_customer(ebike, "c1", 0, 40)
    assert (await vehicle(ebike, tie_low["id"]))["target"] == {"x": 0, "y": 0}
    assert set(await available(ebike)) == {far["id"], tie_high["id"], ebike_["id"]}


async def test_caller_rents_the_waiting_abike(ebike: Ebike, stub: ContractStub) -> None:
    abike = await create(ebike, "ABIKE", 3, 0)
    await stub.give_credit("c1", 500)
    await request_abike(ebike, "c1", 0, 0)
    await ebike.advance(3)
    assert (await vehicle(ebike, abike["id"]))["status"] == "WAITING"
    await start_rental(ebike, "r1", "c1", abike)
    rented = await vehicle(ebike, abike["id"])
    assert rented["status"] == "RENTED" and rented["reservedFor"] is None
    assert await ebike.call("vehicles", "DELETE", "/vehicles/requests/c1", expect=404)
    await ebike.advance(301)  # the wait timer was cancelled with the reservation
    assert (await vehicle(ebike, abike["id"]))["status"] == "RENTED"


async def test_renting_another_bike_releases_the_request(ebike: Ebike, stub: ContractStub) -> None:
    await stations(ebike, (0, 0))
    abike, bike = await create(ebike, "ABIKE", 0, 0), await create(ebike, "BIKE", 9, 9)
    await stub.give_credit("c1", 500)
    await request_abike(ebike, "c1", 4, 0)
    await ebike.advance(2)
    await start_rental(ebike, "r1", "c1", bike)
    released = await vehicle(ebike, abike["id"])
    assert where(released) == (2, 0, "RETURNING") and released["reservedFor"] is None
    assert await vehicle_events(ebike, "ABikeRequestCancelled") == ["ABikeRequestCancelled"]


async def test_concurrent_requests_never_share_a_bike(ebike: Ebike, stub: ContractStub) -> None:
    abikes = [await create(ebike, "ABIKE", x, 0) for x in (1, 2, 3)]
    customers = [f"c{n}" for n in range(5)]
    for customer in customers:
        await stub.give_credit(customer, 500)

    async def race(*callers: str) -> list[Any]:
        client = ebike.runtime.client("vehicles")
        return list(await asyncio.gather(*(client.post("/vehicles/requests", json={
            "customerId": c, "positionX": 0, "positionY": 0}) for c in callers)))

    answers = await race(*customers)
    won = [a.json()["id"] for a in answers if a.status_code == 200]
    assert sorted(won) == sorted(a["id"] for a in abikes)  # every bike once, none twice
    assert [a.json() for a in answers if a.status_code != 200] == [{"error": "no a-bike available"}] * 2

    loser = next(c for c, a in zip(customers, answers, strict=True) if a.status_code != 200)
    await create(ebike, "ABIKE", 4, 0)
    await create(ebike, "ABIKE", 5, 0)
    twice = await race(loser, loser)  # one customer, one request, even when racing itself
    assert sorted(a.status_code for a in twice) == [200, 409]
    assert [a.json() for a in twice if a.status_code == 409] == [{"error": "a-bike already requested"}]
    await ebike.settle()
    reserved = [v["reservedFor"] for v in await ebike.call("vehicles", "GET", "/vehicles") if v["reservedFor"]]
    assert len(reserved) == len(set(reserved)) == 4


async def test_a_lost_race_is_a_concurrency_error(ebike: Ebike) -> None:
    """Two units of work reserve the same a-bike: the vehicle's expected version lets only one commit."""
    abike = await create(ebike, "ABIKE", 1, 0)
    runtime = ebike.runtime.service("vehicles")
    first, second = runtime.uow(), runtime.uow()
    picks = [await nearest_available_abike(uow, Point(x=0, y=0)) for uow in (first, second)]
    assert [p[0].id for p in picks if p] == [abike["id"], abike["id"]]
    for uow, pick, customer in ((first, picks[0], "c1"), (second, picks[1], "c2")):
        assert pick is not None
        reserve(uow, pick[0], customer, Point(x=0, y=0), ebike.clock.timestamp())
    await first.commit()
    with pytest.raises(ConcurrencyError):
        await second.commit()


# -- replay ------------------------------------------------------------------------------------------
async def test_rebuilding_the_read_model_gives_the_same_answers(ebike: Ebike, stub: ContractStub) -> None:
    await stations(ebike, (10, 0))
    abike, ebike_, bike = [await create(ebike, t, 0, 0) for t in ("ABIKE", "EBIKE", "BIKE")]
    await start_rental(ebike, "r1", "c1", abike)
    await start_rental(ebike, "r2", "c2", ebike_)
    await move_customer(ebike, "c1", 4, 3)
    await move_customer(ebike, "c2", 7, 7)
    await stop_rental(ebike, "r1", "c1", abike)
    await ebike.advance(7)  # 6.7 units to the station
    await stub.give_credit("c3", 500)
    await request_abike(ebike, "c3", 12, 0)
    await ebike.advance(1)
    await ebike.call("vehicles", "DELETE", f"/vehicles/{bike['id']}")
    await ebike.settle()

    async def answers() -> list[Any]:
        return [await ebike.call("vehicles", "GET", "/vehicles"), await available(ebike, "c3"),
                await vehicle(ebike, abike["id"]), await vehicle(ebike, ebike_["id"])]

    before = await answers()
    assert before[0][0]["activeRental"] is None and before[0][1]["activeRental"]["customerId"] == "c2"
    await ebike.runtime.rebuild("vehicles")
    await ebike.settle()
    assert await answers() == before
