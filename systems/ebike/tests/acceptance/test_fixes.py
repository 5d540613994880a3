"""Each fixed defect of the reference (spec section 0), shown through GraphQL."""

from __future__ import annotations

import asyncio

import pytest

from ebike.tests.acceptance.harness import Stack
from ebike.tests.acceptance.test_scenarios import START, STOP, admin_vehicle, create_station, create_vehicle, ids

UNKNOWN = "not-an-id-of-anything"


@pytest.mark.parametrize(("who", "operation", "message"), [
    ("customer", STOP, "rental not found"),
    ("customer", START, "vehicle not found"),
    ("admin", "mutation($id:ID!){deleteStation(id:$id){id}}", "station not found"),
    ("admin", "mutation($id:ID!){deleteVehicle(id:$id){id}}", "vehicle not found"),
    ("admin", "mutation($id:ID!){confirmPayment(id:$id){id}}", "payment not found"),
    ("admin", "mutation($id:ID!){rejectPayment(id:$id){id}}", "payment not found"),
    ("admin", "query($id:ID!){customer(id:$id){id}}", "customer not found"),
    ("customer", "mutation($id:ID!){deletePayment(id:$id){id}}", "payment not found"),
])
async def test_unknown_ids_are_not_found(stack: Stack, who: str, operation: str, message: str) -> None:
    admin = await stack.admin()
    caller = admin if who == "admin" else await stack.customer("alice", 1000, admin)
    assert await caller.error(operation, id=UNKNOWN, v=UNKNOWN) == (message, "NOT_FOUND")


async def test_an_id_cannot_reach_another_internal_route(stack: Stack) -> None:
    admin = await stack.admin()
    await stack.customer("alice")
    # Without escaping, this id would make GET /customers/../users out of GET /customers/{id}.
    assert (await admin.error("query($id:ID!){customer(id:$id){id name}}", id="../users"))[1] == "NOT_FOUND"


async def test_positions_may_be_zero(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    station = await create_station(admin, "Origin", 0, 0)
    vehicle = await create_vehicle(admin, "BIKE", 0, 0)
    assert station["position"] == vehicle["position"] == {"x": 0, "y": 0}
    assert await alice.data("mutation{updateCustomerPosition(position:{x:0,y:0})}") is True


async def test_payments_filter_by_status(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    made = {}
    for amount in (100, 200, 300):
        made[amount] = (await alice.data("mutation($a:Int!){createPayment(amount:$a){id}}", a=amount))["id"]
    await admin.data("mutation($id:ID!){confirmPayment(id:$id){id}}", id=made[100])
    await admin.data("mutation($id:ID!){rejectPayment(id:$id){id}}", id=made[200])
    query = "query($s:PaymentStatus){payments(status:$s){id status}}"
    for status, amount in (("CONFIRMED", 100), ("REJECTED", 200), ("PENDING", 300)):
        assert await admin.data(query, s=status) == [{"id": made[amount], "status": status}]
    assert len(await admin.data(query)) == 3


async def test_amounts_must_be_positive(stack: Stack) -> None:
    alice = await stack.customer("alice")
    for amount in (0, -5):
        assert await alice.error("mutation($a:Int!){createPayment(amount:$a){id}}", a=amount) == (
            "validation failed", "BAD_USER_INPUT")


async def test_confirmed_payments_cannot_be_deleted(stack: Stack) -> None:
    admin = await stack.admin()
    alice = await stack.customer("alice")
    payment = await alice.data("mutation{createPayment(amount:500){id}}")
    await admin.data("mutation($id:ID!){confirmPayment(id:$id){id}}", id=payment["id"])
    assert await alice.error("mutation($id:ID!){deletePayment(id:$id){id}}", id=payment["id"]) == (
        "confirmed payment cannot be deleted", "CONFLICT")
    assert await alice.data("{creditBalance}") == 500


async def test_concurrent_rentals_of_one_vehicle_one_wins(stack: Stack) -> None:
    admin = await stack.admin()
    riders = [await stack.customer(f"rider{i}", 500, admin) for i in range(4)]
    bike = await create_vehicle(admin, "BIKE", 7, 7)
    await stack.settle()
    results = await asyncio.gather(*(r.gql(START, v=bike["id"]) for r in riders))
    winners = [r for r in results if not r.get("errors")]
    assert len(winners) == 1
    assert all(r["errors"][0]["message"] == "vehicle already rented" for r in results if r.get("errors"))
    assert await admin.error("mutation($id:ID!){deleteVehicle(id:$id){id}}", id=bike["id"]) == (
        "vehicle is in use", "CONFLICT")


async def test_registering_admins_is_bootstrap_only(stack: Stack) -> None:
    admin = await stack.admin()
    mutation = 'mutation($u:String!){registerAdmin(username:$u,password:"password123"){id role username}}'
    assert await stack.client().error(mutation, u="mallory") == ("Not authorized", "FORBIDDEN")
    alice = await stack.customer("alice")
    assert await alice.error(mutation, u="mallory") == ("Not authorized", "FORBIDDEN")

    before = admin.token
    answer = await admin.http.post("/graphql", json={"query": mutation, "variables": {"u": "admin2"}})
    assert answer.json()["data"]["registerAdmin"]["role"] == "ADMIN"
    assert "set-cookie" not in answer.headers and admin.token == before  # the admin keeps its own session
    assert (await admin.data("{auth{username}}"))["username"] == "admin1"
    assert {"admin2", "admin1"} <= {u["username"] for u in await admin.data("{users{username}}")}
    assert "mallory" not in {u["username"] for u in await admin.data("{users{username}}")}


async def test_the_first_admin_can_also_come_from_the_command_line(stack: Stack) -> None:
    from ebike.gateway.cli import register_admin

    # The CLI opens its own runtime on the system's stores, as `junction ebike create-admin` does.
    await register_admin(stack.runtime.data_dir, "root", "password123", stack.runtime.store_factory)
    await stack.settle()
    root = stack.client()
    assert (await root.data('mutation{login(username:"root",password:"password123"){role}}'))["role"] == "ADMIN"
    assert await stack.client().error('mutation{registerAdmin(username:"eve",password:"password123"){id}}') == (
        "Not authorized", "FORBIDDEN")


async def test_a_moving_abike_is_not_available_and_shows_its_target(stack: Stack) -> None:
    admin = await stack.admin()
    await create_station(admin, "Home", 0, 0)
    bike = await create_vehicle(admin, "ABIKE", 5, 0)
    erin = await stack.customer("erin", 1000, admin)
    await erin.data("mutation{requestABike(position:{x:5,y:3}){id}}")
    await stack.settle()
    assert bike["id"] not in await ids(admin, "{availableVehicles{id}}")
    seen = await admin_vehicle(admin, bike["id"])
    assert seen["status"] == "COMING" and seen["target"] == {"x": 5, "y": 3} and seen["available"] is False
    assert await erin.data("mutation{cancelABikeRequest}") is True
    assert await erin.error("mutation{cancelABikeRequest}") == ("a-bike request not found", "NOT_FOUND")
