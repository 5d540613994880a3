"""customers: the customer view follows auth, accounting, rentals and position events, in any order.

Accounting and rentals events are appended straight to those services' logs, so these tests check
the projection alone, whatever those services do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ebike.contracts.events import (
    CostUpdated,
    ExpenseCreated,
    PaymentDeleted,
    PaymentUpdated,
    RentalStarted,
    RentalStopped,
    UserRegistered,
)
from ebike.system import build
from ebike.tests.conftest import Ebike
from junction.clock import VirtualClock
from junction.events import Event
from junction.runtime import Runtime
from junction.uow import UnitOfWork

PASSWORD = "password123"


async def register(ebike: Ebike, username: str, role: str = "CUSTOMER") -> Any:
    """Register a user through auth; the UserDTO."""
    return await ebike.call("auth", "POST", "/register", {"username": username, "password": PASSWORD, "role": role})


async def publish(ebike: Ebike, service: str, stream: str, *events: Event) -> None:
    """Append events to another service's log, as that service would."""
    uow = ebike.runtime.service(service).uow()
    uow.append(stream, *events)
    await uow.commit()


async def customer(ebike: Ebike, customer_id: str, expect: int = 200) -> Any:
    """GET /customers/{id}."""
    return await ebike.call("customers", "GET", f"/customers/{customer_id}", expect=expect)


async def move(ebike: Ebike, customer_id: str, x: float, y: float, expect: int = 200) -> Any:
    """PATCH /customers/{id}/position."""
    return await ebike.call("customers", "PATCH", f"/customers/{customer_id}/position",
                            {"positionX": x, "positionY": y}, expect=expect)


def confirmed(payment_id: str, customer_id: str, amount: int) -> PaymentUpdated:
    """A payment confirmation event."""
    return PaymentUpdated(id=payment_id, customer_id=customer_id, amount=amount, status="CONFIRMED")


async def test_registered_customer_gets_a_view_and_admins_do_not(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    admin = await register(ebike, "admin1", role="ADMIN")
    await ebike.settle()
    listed = await ebike.call("customers", "GET", "/customers")
    assert listed == [{
        "id": alice["id"], "name": "alice", "positionX": 0.0, "positionY": 0.0, "creditBalance": 0,
        "activeRental": None, "lastLogin": alice["lastLogin"], "createdAt": alice["createdAt"],
        "updatedAt": alice["createdAt"],
    }]
    assert await customer(ebike, alice["id"]) == listed[0]
    assert await customer(ebike, admin["id"], expect=404) == {"error": "customer not found"}
    assert await customer(ebike, "nobody", expect=404) == {"error": "customer not found"}


async def test_customer_registered_before_the_customers_service_ever_ran(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with Runtime(build(), data, clock=VirtualClock(), only=["auth"]) as auth_only:
        answer = await auth_only.client("auth").post(
            "/register", json={"username": "early", "password": PASSWORD, "role": "CUSTOMER"})
        early = answer.json()
    async with Runtime(build(), data, clock=VirtualClock(), poll_interval=0.05) as everything:
        await everything.settle()
        answer = await everything.client("customers").get(f"/customers/{early['id']}")
        assert answer.status_code == 200 and answer.json()["name"] == "early"


async def test_last_login_follows_logins(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    await ebike.advance(90)
    login = await ebike.call("auth", "POST", "/login", {"username": "alice", "password": PASSWORD})
    await ebike.settle()
    view = await customer(ebike, alice["id"])
    assert view["lastLogin"] == login["lastLogin"] == "2026-01-01T08:01:30Z"
    assert view["createdAt"] == "2026-01-01T08:00:00Z" and view["updatedAt"] == "2026-01-01T08:01:30Z"


async def test_position_updates_including_zero(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    await ebike.settle()
    assert await move(ebike, alice["id"], 3, 4) is None
    await ebike.settle()
    view = await customer(ebike, alice["id"])
    assert (view["positionX"], view["positionY"]) == (3, 4)
    await move(ebike, alice["id"], 0, 2.5)
    await ebike.settle()
    view = await customer(ebike, alice["id"])
    assert (view["positionX"], view["positionY"]) == (0, 2.5)
    log = await ebike.runtime.service("customers").store.read_log()
    assert [(e.type, e.key, e.data) for e in log][-1] == (
        "CustomerPositionUpdated", alice["id"], {"id": alice["id"], "positionX": 0.0, "positionY": 2.5})


async def test_position_errors(ebike: Ebike) -> None:
    admin = await register(ebike, "admin1", role="ADMIN")
    alice = await register(ebike, "alice")
    await ebike.settle()
    assert await move(ebike, "nobody", 1, 1, expect=404) == {"error": "customer not found"}
    assert await move(ebike, admin["id"], 1, 1, expect=404) == {"error": "customer not found"}
    missing = await ebike.call("customers", "PATCH", f"/customers/{alice['id']}/position", {"positionX": 1},
                               expect=422)
    assert missing["error"] == "validation failed"
    assert await ebike.runtime.service("customers").store.read_log() == []


async def test_balance_follows_confirmed_payments_and_expenses(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    cid = alice["id"]
    await publish(ebike, "accounting", "payment-p1",
                  PaymentUpdated(id="p1", customer_id=cid, amount=500, status="REJECTED"))
    await publish(ebike, "accounting", "payment-p2", confirmed("p2", cid, 1000))
    await publish(ebike, "accounting", "payment-p3", confirmed("p3", cid, 300))
    await publish(ebike, "accounting", "payment-p3", PaymentDeleted(id="p3", customer_id=cid, amount=300,
                                                                     status="CONFIRMED"))
    await publish(ebike, "accounting", "payment-p1", PaymentDeleted(id="p1", customer_id=cid, amount=500,
                                                                     status="REJECTED"))
    await publish(ebike, "accounting", "expense-e1", ExpenseCreated(id="e1", customer_id=cid, rental_id=None,
                                                                     amount=120))
    await ebike.settle()
    assert (await customer(ebike, cid))["creditBalance"] == 1000 - 120


async def test_events_before_the_registration_are_not_lost(ebike: Ebike) -> None:
    # Another source's worker may run ahead of auth's: the balance and the rental come first.
    await publish(ebike, "accounting", "payment-p1", confirmed("p1", "c1", 1000))
    await publish(ebike, "rentals", "rental-r1", RentalStarted(id="r1", customer_id="c1", vehicle_id="v1",
                                                               vehicle_type="EBIKE", start="2026-01-01T08:00:00Z"))
    await ebike.settle()
    assert await customer(ebike, "c1", expect=404) == {"error": "customer not found"}
    assert await ebike.call("customers", "GET", "/customers") == []
    await publish(ebike, "auth", "user-c1", UserRegistered(id="c1", username="carol", role="CUSTOMER"))
    await ebike.settle()
    view = await customer(ebike, "c1")
    assert view["name"] == "carol" and view["creditBalance"] == 1000
    assert view["activeRental"]["id"] == "r1"


async def test_a_late_older_event_does_not_move_updated_at_back(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    await ebike.advance(60)
    await move(ebike, alice["id"], 1, 1)
    await ebike.settle()
    # accounting's log holds an event from 08:00:30 that reaches the view only now (a lagging source)
    accounting = ebike.runtime.service("accounting")
    lagging = UnitOfWork(accounting.store, VirtualClock(datetime(2026, 1, 1, 8, 0, 30, tzinfo=UTC)), accounting.ids)
    lagging.append("payment-p1", confirmed("p1", alice["id"], 100))
    await lagging.commit()
    await ebike.settle()
    view = await customer(ebike, alice["id"])
    assert view["creditBalance"] == 100 and view["updatedAt"] == "2026-01-01T08:01:00Z"


async def test_active_rental_follows_its_own_rental_only(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    cid = alice["id"]
    started = RentalStarted(id="r1", customer_id=cid, vehicle_id="v1", vehicle_type="ABIKE",
                            start="2026-01-01T08:00:00Z")
    await ebike.advance(5)
    await publish(ebike, "rentals", "rental-r1", started)
    await ebike.settle()
    rental = (await customer(ebike, cid))["activeRental"]
    assert rental == {"id": "r1", "vehicleId": "v1", "customerId": cid, "vehicleType": "ABIKE",
                      "start": "2026-01-01T08:00:00Z", "cost": 0, "createdAt": "2026-01-01T08:00:05Z",
                      "updatedAt": "2026-01-01T08:00:05Z"}

    cost = {"customer_id": cid, "vehicle_id": "v1", "vehicle_type": "ABIKE", "start": started.start}
    await publish(ebike, "rentals", "rental-r1", CostUpdated(id="r1", cost=200, **cost))
    await publish(ebike, "rentals", "rental-r0", CostUpdated(id="r0", cost=999, **cost))  # an older rental
    await publish(ebike, "rentals", "rental-r0", RentalStopped(id="r0", customer_id=cid, vehicle_id="v1",
                                                               start=started.start, end=started.start))
    await ebike.settle()
    assert (await customer(ebike, cid))["activeRental"]["cost"] == 200

    await publish(ebike, "rentals", "rental-r1", RentalStopped(id="r1", customer_id=cid, vehicle_id="v1",
                                                               start=started.start, end="2026-01-01T08:02:00Z"))
    await ebike.settle()
    assert (await customer(ebike, cid))["activeRental"] is None


async def test_rebuild_gives_the_same_answers(ebike: Ebike) -> None:
    alice, bob = await register(ebike, "alice"), await register(ebike, "bob")
    await register(ebike, "admin1", role="ADMIN")
    await ebike.settle()
    await ebike.advance(30)
    await move(ebike, alice["id"], 0, 7)
    await ebike.advance(30)
    await publish(ebike, "accounting", "payment-p1", confirmed("p1", bob["id"], 700))
    await ebike.advance(30)
    await publish(ebike, "rentals", "rental-r1", RentalStarted(id="r1", customer_id=bob["id"], vehicle_id="v1",
                                                               vehicle_type="BIKE", start="2026-01-01T08:01:30Z"))
    await publish(ebike, "accounting", "expense-e1", ExpenseCreated(id="e1", customer_id=bob["id"],
                                                                     rental_id=None, amount=80))
    await ebike.advance(30)
    await ebike.call("auth", "POST", "/login", {"username": "alice", "password": PASSWORD})
    await ebike.settle()
    before = await ebike.call("customers", "GET", "/customers")
    assert [(c["name"], c["creditBalance"], c["positionY"]) for c in before] == [("alice", 0, 7), ("bob", 620, 0)]
    assert before[1]["activeRental"]["id"] == "r1"

    await ebike.runtime.rebuild("customers")
    await ebike.settle()
    assert await ebike.call("customers", "GET", "/customers") == before
