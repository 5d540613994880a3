"""rentals: start/stop rules, the unlocking fee, per-minute charging on the virtual clock, atomicity."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from ebike.contracts.events import VehicleCreated, VehicleDeleted, VehicleStatus, VehicleType, VehicleUpdated
from ebike.tests.conftest import Ebike
from ebike.tests.test_accounting import balance, expense_amounts, hold, pay, slow_store, suspend_around


# -- helpers ---------------------------------------------------------------------------------------
async def vehicle(ebike: Ebike, kind: VehicleType = "EBIKE", status: VehicleStatus | None = None,
                  reserved_for: str | None = None) -> str:
    """A vehicle on the vehicles log (appended directly; rentals learns it from there); its id."""
    uow = ebike.runtime.service("vehicles").uow()
    vehicle_id = uow.new_id()
    uow.append(f"vehicle-{vehicle_id}", VehicleCreated(id=vehicle_id, type=kind, position_x=1, position_y=2,
                                                       battery=1))
    await uow.commit()
    if status is not None:
        await set_status(ebike, vehicle_id, status, reserved_for)
    await ebike.settle()
    return vehicle_id


async def set_status(ebike: Ebike, vehicle_id: str, status: VehicleStatus, reserved_for: str | None = None) -> None:
    """The twin reports a new status for the vehicle."""
    uow = ebike.runtime.service("vehicles").uow()
    uow.append(f"vehicle-{vehicle_id}", VehicleUpdated(id=vehicle_id, position_x=1, position_y=2, battery=1,
                                                       status=status, reserved_for=reserved_for))
    await uow.commit()
    await ebike.settle()


async def start(ebike: Ebike, customer: str, vehicle_id: str, expect: int = 200) -> dict[str, Any]:
    """POST /rentals/start."""
    return await ebike.call("rentals", "POST", "/rentals/start", {"customerId": customer, "vehicleId": vehicle_id},
                            expect=expect)


async def stop(ebike: Ebike, customer: str, rental_id: str, expect: int = 200) -> dict[str, Any]:
    """POST /rentals/{id}/stop."""
    return await ebike.call("rentals", "POST", f"/rentals/{rental_id}/stop", {"customerId": customer}, expect=expect)


async def active(ebike: Ebike, customer: str) -> dict[str, Any] | None:
    """The customer's active rental, or None."""
    result: dict[str, Any] | None = await ebike.call("rentals", "GET", f"/customers/{customer}/rentals/active")
    return result


# -- start -----------------------------------------------------------------------------------------
async def test_start_holds_the_fee_at_once_and_projects_it_as_cost(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    bike = await vehicle(ebike, "EBIKE")
    rental = await start(ebike, "c1", bike)
    assert rental["end"] is None and rental["cost"] == 0
    assert rental["customerId"] == "c1" and rental["vehicleId"] == bike and rental["vehicleType"] == "EBIKE"
    assert rental["start"] == rental["createdAt"] == rental["updatedAt"]
    assert datetime.fromisoformat(rental["start"]) == ebike.clock.now()
    assert await balance(ebike, "c1") == 880  # invariant 4: no waiting for any event
    await ebike.settle()
    assert await balance(ebike, "c1") == 880
    assert (await active(ebike, "c1") or {})["cost"] == 120
    listed = await ebike.call("accounting", "GET", "/customers/c1/expenses")
    assert [(e["amount"], e["rentalId"]) for e in listed] == [(120, rental["id"])]
    await ebike.settle()
    log = await ebike.runtime.service("rentals").store.read_log()
    assert [(e.type, e.data["cost"] if e.type == "CostUpdated" else None) for e in log] == [
        ("RentalStarted", None), ("CostUpdated", 120)]


async def test_start_checks_in_order(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    await pay(ebike, "c2", 1000)
    first, second = await vehicle(ebike), await vehicle(ebike)
    assert await start(ebike, "c1", "nope", expect=404) == {"error": "vehicle not found"}
    await start(ebike, "c1", first)
    # the customer check comes before the vehicle's rental check (invariant 1), after the lookup
    assert await start(ebike, "c1", first, expect=409) == {"error": "customer already has an active rental"}
    assert await start(ebike, "c1", "nope", expect=404) == {"error": "vehicle not found"}
    assert await start(ebike, "c1", second, expect=409) == {"error": "customer already has an active rental"}
    assert await start(ebike, "c2", first, expect=409) == {"error": "vehicle already rented"}  # invariant 2
    assert await balance(ebike, "c2") == 1000  # refused before any hold


async def test_only_an_available_vehicle_can_be_rented(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    bike = await vehicle(ebike, "ABIKE")
    for status in ("RETURNING", "COMING", "CHARGING"):
        await set_status(ebike, bike, status)
        assert await start(ebike, "c1", bike, expect=409) == {"error": "vehicle is not available"}
    await set_status(ebike, bike, "WAITING", reserved_for="c2")
    assert await start(ebike, "c1", bike, expect=409) == {"error": "vehicle is not available"}
    await set_status(ebike, bike, "WAITING", reserved_for="c1")
    await start(ebike, "c1", bike)
    assert await balance(ebike, "c1") == 800


async def test_a_deleted_vehicle_is_not_found(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    bike = await vehicle(ebike)
    uow = ebike.runtime.service("vehicles").uow()
    uow.append(f"vehicle-{bike}", VehicleDeleted(id=bike))
    await uow.commit()
    await ebike.settle()
    assert await start(ebike, "c1", bike, expect=404) == {"error": "vehicle not found"}


async def test_start_needs_the_unlocking_fee_in_credit(ebike: Ebike) -> None:
    ebike_id, bike_id = await vehicle(ebike, "EBIKE"), await vehicle(ebike, "BIKE")
    assert await start(ebike, "c2", ebike_id, expect=400) == {
        "error": "customer c2 does not have enough credit balance"}
    await pay(ebike, "c2", 100)
    assert await start(ebike, "c2", ebike_id, expect=400) == {
        "error": "customer c2 does not have enough credit balance"}
    assert await active(ebike, "c2") is None
    await pay(ebike, "c3", 80)
    await start(ebike, "c3", bike_id)  # invariant 3: equal to the fee is enough
    assert await balance(ebike, "c3") == 0
    await start(ebike, "c2", bike_id, expect=409)
    assert await balance(ebike, "c2") == 100


def slow_network(monkeypatch: pytest.MonkeyPatch, ebike: Ebike) -> None:
    """Rentals' reads and its calls to accounting suspend, so concurrent starts interleave."""
    slow_store(monkeypatch, ebike, "rentals")
    suspend_around(monkeypatch, ebike.runtime.transport.client("accounting"), "request")


async def test_concurrent_starts_on_one_vehicle_have_one_winner(ebike: Ebike, monkeypatch: pytest.MonkeyPatch) -> None:
    customers = [f"c{i}" for i in range(50)]
    for customer in customers:
        await pay(ebike, customer, 500)
    bike = await vehicle(ebike)
    slow_network(monkeypatch, ebike)
    client = ebike.runtime.client("rentals")
    answers = await asyncio.gather(*[
        client.post("/rentals/start", json={"customerId": c, "vehicleId": bike}) for c in customers])
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 1, statuses
    assert {a.json()["error"] for a in answers if a.status_code != 200} == {"vehicle already rented"}
    winner = customers[statuses.index(200)]
    await ebike.settle()
    actives = [c for c in customers if await active(ebike, c) is not None]
    assert actives == [winner]
    assert await expense_amounts(ebike, winner) == [120]


async def test_concurrent_starts_by_one_customer_have_one_winner(ebike: Ebike,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    await pay(ebike, "c1", 5000)
    bikes = [await vehicle(ebike) for _ in range(10)]
    slow_network(monkeypatch, ebike)
    client = ebike.runtime.client("rentals")
    answers = await asyncio.gather(*[
        client.post("/rentals/start", json={"customerId": "c1", "vehicleId": b}) for b in bikes])
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    await ebike.settle()
    assert await expense_amounts(ebike, "c1") == [120]


# -- charging and stop -----------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "ride", "cost", "expenses"), [
    ("EBIKE", 75, 130, [120, 10]),  # E5
    ("ABIKE", 70, 210, [200, 10]),
    ("BIKE", 130, 90, [80, 5, 5]),
    ("BIKE", 50, 80, [80]),
])
async def test_cost_is_fee_plus_one_charge_per_minute_mark(ebike: Ebike, kind: VehicleType, ride: int, cost: int,
                                                           expenses: list[int]) -> None:
    await pay(ebike, "c1", 1000)
    bike = await vehicle(ebike, kind)
    rental = await start(ebike, "c1", bike)
    await ebike.advance(ride)
    assert await balance(ebike, "c1") == 1000 - cost  # invariant 5
    assert (await active(ebike, "c1") or {})["cost"] == cost
    stopped = await stop(ebike, "c1", rental["id"])
    assert stopped["cost"] == cost and stopped["id"] == rental["id"]
    assert datetime.fromisoformat(stopped["end"]) == datetime.fromisoformat(rental["start"]) + timedelta(seconds=ride)
    await ebike.advance(180)  # no charge after the stop
    assert await balance(ebike, "c1") == 1000 - cost
    assert await expense_amounts(ebike, "c1", rental["id"]) == expenses
    assert sum(expenses) == cost  # invariant 6
    assert await active(ebike, "c1") is None
    past = await ebike.call("rentals", "GET", "/customers/c1/rentals/past")
    assert [(r["id"], r["cost"], r["end"]) for r in past] == [(rental["id"], cost, stopped["end"])]
    assert await stop(ebike, "c1", rental["id"], expect=409) == {"error": "rental already ended"}
    assert await ebike.runtime.service("rentals").store.next_due() is None  # the chain has ended


async def test_charges_fall_on_the_minute_marks_without_drift(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    rental = await start(ebike, "c1", await vehicle(ebike))
    t0 = datetime.fromisoformat(rental["start"])
    await ebike.advance(10 * 60 + 30)
    listed = await ebike.call("accounting", "GET", "/customers/c1/expenses")
    assert [datetime.fromisoformat(e["createdAt"]) for e in listed[1:]] == [
        t0 + timedelta(seconds=60 * k) for k in range(1, 11)]
    assert (await active(ebike, "c1") or {})["cost"] == 120 + 10 * 10
    await ebike.settle()
    costs = [e.data["cost"] for e in await ebike.runtime.service("rentals").store.read_log() if e.type == "CostUpdated"]
    assert costs == [120 + 10 * k for k in range(11)]  # running totals


async def test_a_refired_charge_timer_does_not_charge_twice(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    rental = await start(ebike, "c1", await vehicle(ebike))
    await ebike.advance(61)
    assert await balance(ebike, "c1") == 870
    # the same mark fires again (as after a crash between the charge and the timer's commit)
    uow = ebike.runtime.service("rentals").uow()
    uow.schedule(ebike.clock.now(), "charge-minute", {"rentalId": rental["id"], "minute": 1})
    await uow.commit()
    await ebike.settle()
    assert await balance(ebike, "c1") == 870
    await ebike.advance(60)  # and the chain neither forked nor moved: one charge per mark, on the mark
    listed = await ebike.call("accounting", "GET", "/customers/c1/expenses")
    assert [e["amount"] for e in listed] == [120, 10, 10]
    t0 = datetime.fromisoformat(rental["start"])
    assert datetime.fromisoformat(listed[-1]["createdAt"]) == t0 + timedelta(seconds=120)
    pending = await ebike.runtime.service("rentals").store.due_timers(float("inf"))
    assert [(t.name, t.payload) for t in pending] == [("charge-minute", {"rentalId": rental["id"], "minute": 3})]
    assert (await active(ebike, "c1") or {})["cost"] == 140


async def test_an_expired_hold_is_charged_as_a_plain_expense_once(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    held = await hold(ebike, "c1", 120)
    await ebike.advance(11)
    assert await balance(ebike, "c1") == 1000
    # the finalize timer fires only now (say, accounting was down for longer than the hold lasts)
    uow = ebike.runtime.service("rentals").uow()
    payload = {"holdId": held["id"], "rentalId": "r1", "customerId": "c1", "amount": 120}
    for _ in range(2):
        uow.schedule(ebike.clock.now(), "finalize-unlock-fee", payload)
    await uow.commit()
    await ebike.settle()
    assert await expense_amounts(ebike, "c1", "r1") == [120]
    assert await balance(ebike, "c1") == 880
    assert await ebike.runtime.service("rentals").store.next_due() is None  # both timers done, none failing


async def test_only_the_renter_stops_a_rental(ebike: Ebike) -> None:
    await pay(ebike, "c2", 1000)
    rental = await start(ebike, "c2", await vehicle(ebike))
    refused = await stop(ebike, "c1", rental["id"], expect=403)
    assert refused == {"error": f"customer c1 not authorized to stop rental {rental['id']}"}
    assert (await active(ebike, "c2") or {})["id"] == rental["id"]
    assert await stop(ebike, "c1", "nope", expect=404) == {"error": "rental not found"}
    assert await ebike.call("rentals", "GET", "/customers/c2/rentals/past") == []


async def test_a_stopped_vehicle_can_be_rented_again(ebike: Ebike) -> None:
    await pay(ebike, "c1", 1000)
    await pay(ebike, "c2", 1000)
    bike = await vehicle(ebike, "BIKE")
    first = await start(ebike, "c1", bike)
    await set_status(ebike, bike, "RENTED")  # the twin's view lags behind the stop: not an obstacle
    await stop(ebike, "c1", first["id"])
    second = await start(ebike, "c2", bike)
    await start(ebike, "c1", await vehicle(ebike, "BIKE"))  # and its customer may rent another one
    await ebike.settle()
    assert (await active(ebike, "c2") or {})["id"] == second["id"]
    assert [r["id"] for r in await ebike.call("rentals", "GET", "/customers/c1/rentals/past")] == [first["id"]]

