"""Acceptance scenarios E1 to E6, E9, E10 and E11 of the ebike spec, through GraphQL, on the virtual clock.

"Eventually" in the spec becomes ``await stack.settle()``: every consumer has caught up.
"""

from __future__ import annotations

from typing import Any

from ebike.tests.acceptance.harness import PASSWORD, Client, Stack, confirmed_payment

START = "mutation($v:ID!){startRental(vehicleId:$v){id start end cost}}"
STOP = "mutation($id:ID!){stopRental(id:$id){id end cost}}"
VEHICLE = "id type battery available status position{x y} target{x y} activeRental{id customerId vehicleType cost}"


async def create_vehicle(admin: Client, vtype: str, x: float, y: float) -> dict[str, Any]:
    """An admin creates a vehicle."""
    vehicle: dict[str, Any] = await admin.data(
        "mutation($t:VehicleType!,$x:Float!,$y:Float!){createVehicle(input:{type:$t,position:{x:$x,y:$y}})"
        f"{{{VEHICLE}}}}}", t=vtype, x=x, y=y)
    return vehicle


async def create_station(admin: Client, name: str, x: float, y: float) -> dict[str, Any]:
    """An admin creates a station."""
    station: dict[str, Any] = await admin.data(
        "mutation($n:String!,$x:Float!,$y:Float!){createStation(input:{name:$n,position:{x:$x,y:$y}})"
        "{id name position{x y} createdAt}}", n=name, x=x, y=y)
    return station


async def ids(client: Client, query: str) -> set[str]:
    """The ids of a list query's answer."""
    return {item["id"] for item in await client.data(query)}


async def admin_vehicle(admin: Client, vehicle_id: str) -> dict[str, Any]:
    """One vehicle as the admin sees it."""
    return next(v for v in await admin.data(f"{{vehicles{{{VEHICLE}}}}}") if v["id"] == vehicle_id)


async def balance(client: Client) -> int:
    """The caller's credit balance."""
    value: int = await client.data("{creditBalance}")
    return value


async def test_e1_registration_session_roles(stack: Stack) -> None:
    admin = stack.client()
    me = await admin.data('mutation{registerAdmin(username:"admin1",password:"password123"){id role username}}')
    assert me["role"] == "ADMIN" and me["username"] == "admin1"
    assert (await admin.data("{auth{id}}"))["id"] == me["id"]

    alice = stack.client()
    assert (await alice.data('mutation{registerCustomer(username:"alice",password:"password123"){id role}}'))[
        "role"] == "CUSTOMER"
    assert await alice.error('mutation{registerCustomer(username:"bob",password:"password123"){id}}') == (
        "Authenticated", "FORBIDDEN")
    assert await alice.error("{users{id}}") == ("Not authorized", "FORBIDDEN")
    users = {(u["username"], u["role"]) for u in await admin.data("{users{username role}}")}
    assert {("admin1", "ADMIN"), ("alice", "CUSTOMER")} <= users
    assert await stack.client().error('mutation{registerCustomer(username:"alice",password:"password999"){id}}') == (
        "user already exists", "CONFLICT")

    token = alice.token
    assert token and await alice.data("mutation{logout}") is True
    assert await alice.data("{auth{id}}") is None
    replay = await stack.client().gql("{auth{id}}", headers={"Authorization": f"Bearer {token}"})
    assert replay == {"data": {"auth": None}}

    assert await alice.error('mutation{login(username:"alice",password:"wrongpass1"){id}}') == (
        "invalid username or password", "UNAUTHENTICATED")
    assert await alice.error('mutation{login(username:"alice",password:"short"){id}}') == (
        "validation failed", "BAD_USER_INPUT")
    assert (await alice.data('mutation{login(username:"alice",password:"password123"){username}}'))[
        "username"] == "alice"

    await stack.settle()
    customers = await admin.data("{customers{name creditBalance position{x y} activeRental{id} lastLogin}}")
    (view,) = [c for c in customers if c["name"] == "alice"]
    assert view["creditBalance"] == 0 and view["position"] == {"x": 0, "y": 0} and view["activeRental"] is None
    assert view["lastLogin"]
    assert all(c["name"] != "admin1" for c in customers)


async def test_e2_payments_and_credit_balance(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    pay = await alice.data("mutation{createPayment(amount:1000){id amount status}}")
    assert (pay["amount"], pay["status"]) == (1000, "PENDING") and await balance(alice) == 0
    assert pay["id"] in await ids(admin, "{payments{id}}")
    assert (await admin.data("mutation($id:ID!){confirmPayment(id:$id){status}}", id=pay["id"]))[
        "status"] == "CONFIRMED"
    assert await balance(alice) == 1000
    assert await admin.error("mutation($id:ID!){confirmPayment(id:$id){status}}", id=pay["id"]) == (
        "payment already confirmed", "CONFLICT")
    assert await balance(alice) == 1000

    second = await alice.data("mutation{createPayment(amount:500){id}}")
    assert (await admin.data("mutation($id:ID!){rejectPayment(id:$id){status}}", id=second["id"]))[
        "status"] == "REJECTED"
    assert await balance(alice) == 1000
    tx = await alice.data("{transactions{__typename ... on Payment{amount status} ... on Expense{amount}}}")
    assert sorted((t["__typename"], t["amount"], t["status"]) for t in tx) == [
        ("Payment", 500, "REJECTED"), ("Payment", 1000, "CONFIRMED")]
    assert await alice.error("mutation{createPayment(amount:0){id}}") == ("validation failed", "BAD_USER_INPUT")

    await stack.settle()
    assert (await admin.data("query($id:ID!){customer(id:$id){creditBalance}}", id=alice.id))["creditBalance"] == 1000


async def test_e3_insufficient_balance(stack: Stack) -> None:
    admin = await stack.admin()
    carl = await stack.customer("carl")
    ebike = await create_vehicle(admin, "EBIKE", 5, 5)
    await stack.settle()
    message, code = await carl.error(START, v=ebike["id"])
    assert "does not have enough credit balance" in message and code == "BAD_USER_INPUT"
    assert await carl.data("{activeRental{id}}") is None and await balance(carl) == 0

    await confirmed_payment(carl, admin, 100)
    assert "does not have enough credit balance" in (await carl.error(START, v=ebike["id"]))[0]
    bike = await create_vehicle(admin, "BIKE", 6, 6)
    await stack.settle()
    await carl.data(START, v=bike["id"])
    assert await balance(carl) == 20


async def rent_ebike(stack: Stack) -> tuple[Client, Client, Client, dict[str, Any], dict[str, Any]]:
    """E4's set-up and steps 1-4: alice (1000) rents an EBIKE; returns admin, alice, carl, vehicle, rental."""
    admin = await stack.admin()
    alice = await stack.customer("alice", 1000, admin)
    carl = await stack.customer("carl", 500, admin)
    vehicle = await create_vehicle(admin, "EBIKE", 10.5, 20.5)
    assert (vehicle["type"], vehicle["battery"], vehicle["available"], vehicle["activeRental"]) == (
        "EBIKE", 1, True, None)
    await stack.settle()
    assert vehicle["id"] in await ids(alice, "{availableVehicles{id}}")
    rental = await alice.data(START, v=vehicle["id"])
    assert rental["end"] is None and rental["cost"] == 0
    assert await balance(alice) == 880  # at once: the unlocking fee is held before the answer
    await stack.settle()
    assert (await alice.data("{activeRental{id cost}}")) == {"id": rental["id"], "cost": 120}
    return admin, alice, carl, vehicle, rental


async def test_e4_start_rental_unlock_fee_and_availability(stack: Stack) -> None:
    admin, alice, carl, vehicle, rental = await rent_ebike(stack)
    assert vehicle["id"] not in await ids(alice, "{availableVehicles{id}}")
    seen = await admin_vehicle(admin, vehicle["id"])
    assert seen["available"] is False and seen["status"] == "RENTED"
    assert seen["activeRental"]["customerId"] == alice.id
    customers = await admin.data("{customers{id activeRental{vehicleType}}}")
    assert {"id": alice.id, "activeRental": {"vehicleType": "EBIKE"}} in customers

    other = await create_vehicle(admin, "BIKE", 1, 1)
    await stack.settle()
    assert await alice.error(START, v=other["id"]) == ("customer already has an active rental", "CONFLICT")
    assert await carl.error(START, v=vehicle["id"]) == ("vehicle already rented", "CONFLICT")
    tx = await alice.data("{transactions{__typename ... on Expense{amount rentalId}}}")
    assert {"__typename": "Expense", "amount": 120, "rentalId": rental["id"]} in tx


async def test_e5_per_minute_charging_and_stop(stack: Stack) -> None:
    _, alice, _, vehicle, rental = await rent_ebike(stack)
    await stack.advance(75)
    assert await balance(alice) == 870
    assert (await alice.data("{activeRental{cost}}"))["cost"] == 130
    await stack.advance(30)  # t0 + 105 s: before the second mark
    stopped = await alice.data(STOP, id=rental["id"])
    assert stopped["end"] is not None and stopped["cost"] == 130

    await stack.advance(85)  # t0 + 190 s
    assert await balance(alice) == 870
    assert await alice.data("{activeRental{id}}") is None
    past = await alice.data("{pastRentals{id cost end}}")
    assert [(p["id"], p["cost"]) for p in past] == [(rental["id"], 130)] and past[0]["end"]
    assert vehicle["id"] in await ids(alice, "{availableVehicles{id}}")
    tx = await alice.data("{transactions{__typename ... on Expense{amount rentalId}}}")
    assert sorted(t["amount"] for t in tx if t.get("rentalId") == rental["id"]) == [10, 120]
    assert await alice.error(STOP, id=rental["id"]) == ("rental already ended", "CONFLICT")


async def test_e5_variants_abike_and_bike(stack: Stack) -> None:
    admin = await stack.admin()
    rider = await stack.customer("rider", 1000, admin)
    for vtype, seconds, cost in (("ABIKE", 70, 210), ("BIKE", 130, 90)):
        vehicle = await create_vehicle(admin, vtype, 3, 3)
        await stack.settle()
        rental = await rider.data(START, v=vehicle["id"])
        await stack.advance(seconds)
        assert (await rider.data(STOP, id=rental["id"]))["cost"] == cost, vtype
        await stack.settle()


async def test_e6_ownership_checks(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice", 1000, admin)
    carl = await stack.customer("carl", 500, admin)
    bike = await create_vehicle(admin, "BIKE", 2, 2)
    await stack.settle()
    r2 = await carl.data(START, v=bike["id"])
    message, code = await alice.error(STOP, id=r2["id"])
    assert message == f"customer {alice.id} not authorized to stop rental {r2['id']}" and code == "FORBIDDEN"
    assert (await carl.data("{activeRental{id}}"))["id"] == r2["id"]

    p1 = await alice.data("mutation{createPayment(amount:300){id}}")
    message, code = await carl.error("mutation($id:ID!){deletePayment(id:$id){id}}", id=p1["id"])
    assert "not authorized" in message and code == "FORBIDDEN"
    assert (await alice.data("mutation($id:ID!){deletePayment(id:$id){id}}", id=p1["id"]))["id"] == p1["id"]
    assert p1["id"] not in {t.get("id") for t in await alice.data("{transactions{... on Payment{id}}}")}


async def test_e9_stations_and_vehicles_admin(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    station = await create_station(admin, "Central", 1.5, 2.5)
    await stack.settle()
    listed = {"id": station["id"], "name": "Central", "position": {"x": 1.5, "y": 2.5}}
    for who in (admin, alice):
        assert listed in await who.data("{stations{id name position{x y}}}")
    assert await alice.error('mutation{createStation(input:{name:"X",position:{x:1,y:1}}){id}}') == (
        "Not authorized", "FORBIDDEN")
    assert await alice.error("{vehicles{id}}") == ("Not authorized", "FORBIDDEN")
    assert await stack.client().error("{stations{id}}") == ("Not authenticated", "UNAUTHENTICATED")

    assert (await admin.data("mutation($id:ID!){deleteStation(id:$id){id}}", id=station["id"]))["id"] == station["id"]
    await stack.settle()
    assert station["id"] not in await ids(admin, "{stations{id}}")
    assert await admin.error("mutation($id:ID!){deleteStation(id:$id){id}}", id=station["id"]) == (
        "station not found", "NOT_FOUND")

    abike = await create_vehicle(admin, "ABIKE", 3, 3)
    await stack.settle()
    seen = await admin_vehicle(admin, abike["id"])
    assert (seen["type"], seen["battery"]) == ("ABIKE", 1)
    await admin.data("mutation($id:ID!){deleteVehicle(id:$id){id}}", id=abike["id"])
    await stack.settle()
    assert abike["id"] not in await ids(admin, "{vehicles{id}}") | await ids(alice, "{availableVehicles{id}}")


async def test_e10_customer_position_zero_is_valid(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    assert await alice.data("mutation{updateCustomerPosition(position:{x:3,y:4})}") is True
    await stack.settle()
    assert await alice.data("{position{x y}}") == {"x": 3, "y": 4}
    assert (await admin.data("query($id:ID!){customer(id:$id){position{x y}}}", id=alice.id))["position"] == {
        "x": 3, "y": 4}
    assert await alice.data("mutation{updateCustomerPosition(position:{x:0,y:4})}") is True  # section 0 item 7
    await stack.settle()
    assert await alice.data("{position{x y}}") == {"x": 0, "y": 4}


async def test_e11_autonomous_abike(stack: Stack) -> None:
    admin = await stack.admin()
    for name, x in (("West", 10), ("East", 100)):
        await create_station(admin, name, x, 0)
    bike = await create_vehicle(admin, "ABIKE", 12, 0)
    dana = await stack.customer("dana", 1000, admin)
    erin = await stack.customer("erin", 1000, admin)
    rental = await dana.data(START, v=bike["id"])
    await dana.data("mutation{updateCustomerPosition(position:{x:20,y:0})}")
    await stack.settle()
    ridden = await admin_vehicle(admin, bike["id"])
    assert ridden["position"] == {"x": 20, "y": 0} and ridden["status"] == "RENTED"

    await dana.data(STOP, id=rental["id"])
    await stack.settle()
    back = await admin_vehicle(admin, bike["id"])
    assert back["status"] == "RETURNING" and back["target"] == {"x": 10, "y": 0}
    assert bike["id"] not in await ids(erin, "{availableVehicles{id}}")
    await stack.advance(10)  # 10 ticks of 1 unit
    home = await admin_vehicle(admin, bike["id"])
    assert home["status"] == "AVAILABLE" and home["position"] == {"x": 10, "y": 0} and home["target"] is None
    assert home["battery"] < ridden["battery"]

    await erin.data("mutation{updateCustomerPosition(position:{x:50,y:50})}")
    coming = await erin.data("mutation{requestABike(position:{x:50,y:50}){id status target{x y}}}")
    assert coming == {"id": bike["id"], "status": "COMING", "target": {"x": 50, "y": 50}}
    await stack.settle()
    assert bike["id"] not in await ids(dana, "{availableVehicles{id}}")
    await stack.advance(65)  # ⌈√(40² + 50²)⌉ ticks
    waiting = await admin_vehicle(admin, bike["id"])
    assert waiting["status"] == "WAITING" and waiting["position"] == {"x": 50, "y": 50}
    assert bike["id"] in await ids(erin, "{availableVehicles{id}}")
    assert bike["id"] not in await ids(dana, "{availableVehicles{id}}")
    assert (await dana.error(START, v=bike["id"]))[1] == "CONFLICT"
    assert (await erin.data(START, v=bike["id"]))["end"] is None


async def test_login_sets_a_cookie_that_authenticates(stack: Stack) -> None:
    await stack.customer("alice")
    browser = stack.client()
    await browser.data("mutation($p:String!){login(username:\"alice\",password:$p){id}}", p=PASSWORD)
    assert browser.token and (await browser.data("{auth{username role}}")) == {"username": "alice", "role": "CUSTOMER"}
