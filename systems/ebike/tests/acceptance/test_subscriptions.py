"""Subscriptions over a real WebSocket (graphql-transport-ws), served by uvicorn on a loopback port.

The runtime runs on the virtual clock in the test's event loop; uvicorn serves its public app in
the same loop, so an ``advance`` that moves a bike is seen by the subscriber as it would be live.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from ebike.tests.acceptance.harness import Client, Stack
from ebike.tests.acceptance.test_scenarios import START, STOP, create_station, create_vehicle

PROTOCOL = "graphql-transport-ws"
VEHICLES = "subscription{vehicleUpdated{id vehicle{status position{x y} target{x y}}}}"


@pytest.fixture
async def server(stack: Stack) -> AsyncIterator[str]:
    """ws://127.0.0.1:<free port>/graphql serving the stack's public app."""
    config = uvicorn.Config(stack.runtime.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"ws://127.0.0.1:{port}/graphql"
    server.should_exit = True
    await task


async def open_socket(url: str, client: Client | None = None, bearer: str | None = None,
                      origin: str | None = None) -> ClientConnection:
    """A graphql-transport-ws connection, acknowledged; credentials by cookie or connection_init."""
    headers = {"Cookie": f"jwt={client.token}"} if client and client.token else {}
    if origin:
        headers["Origin"] = origin
    socket = await connect(url, subprotocols=[PROTOCOL], additional_headers=headers)  # type: ignore[list-item]
    await socket.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {bearer}"} if bearer else {}}))
    assert json.loads(await socket.recv()) == {"type": "connection_ack"}
    return socket


async def subscribe(socket: ClientConnection, query: str, operation_id: str = "1") -> None:
    """Start a subscription."""
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}}))


async def receive(socket: ClientConnection) -> dict[str, Any]:
    """The next message (bounded wait)."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 5))
    return message


async def until(check: Any) -> None:
    """Wait until ``check()`` holds (a subscription registers right after its subscribe message)."""
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_moving_abike_is_pushed_to_subscribers(stack: Stack, server: str) -> None:
    admin = await stack.admin()
    await create_station(admin, "Home", 0, 0)
    bike = await create_vehicle(admin, "ABIKE", 12, 0)
    erin = await stack.customer("erin", 1000, admin)
    await stack.settle()

    watcher = await open_socket(server, admin)  # the admin by cookie
    caller = await open_socket(server, bearer=erin.token)  # the customer by connection_init
    await subscribe(watcher, VEHICLES)
    await subscribe(caller, VEHICLES)
    await until(lambda: stack.gateway.vehicles.changes.subscribers == 2)

    await erin.data("mutation{requestABike(position:{x:15,y:0}){id}}")
    for socket in (watcher, caller):
        message = await receive(socket)
        assert message["type"] == "next" and message["id"] == "1"
        coming = {"status": "COMING", "position": {"x": 12, "y": 0}, "target": {"x": 15, "y": 0}}
        assert message["payload"]["data"]["vehicleUpdated"] == {"id": bike["id"], "vehicle": coming}

    await stack.advance(1)  # one tick: one unit toward the caller
    moved = (await receive(watcher))["payload"]["data"]["vehicleUpdated"]["vehicle"]
    assert moved["position"] == {"x": 13, "y": 0} and moved["status"] == "COMING"
    assert (await receive(caller))["payload"]["data"]["vehicleUpdated"]["vehicle"]["position"] == {"x": 13, "y": 0}

    await subscribe(watcher, VEHICLES, "1")  # a second subscribe with a live id closes the connection (4409)
    await watcher.close()
    await caller.send(json.dumps({"id": "1", "type": "complete"}))
    await until(lambda: stack.gateway.vehicles.changes.subscribers == 0)
    await caller.close()


async def test_customers_see_only_their_own_and_available_vehicles(stack: Stack, server: str) -> None:
    admin = await stack.admin()
    bike = await create_vehicle(admin, "BIKE", 1, 1)
    dana = await stack.customer("dana", 1000, admin)
    erin = await stack.customer("erin", 1000, admin)
    onlooker = await open_socket(server, erin)
    await subscribe(onlooker, VEHICLES)
    await until(lambda: stack.gateway.vehicles.changes.subscribers == 1)

    rental = await dana.data(START, v=bike["id"])
    # erin saw nothing of it before; now it left her view without revealing the rider or where they go
    assert (await receive(onlooker))["payload"]["data"]["vehicleUpdated"] == {"id": bike["id"], "vehicle": None}
    await dana.data("mutation{updateCustomerPosition(position:{x:30,y:30})}")
    await dana.data(STOP, id=rental["id"])
    # It comes back where dana left it. When the stop overtook the move (they travel on two feeds),
    # erin may first see it available where the rental began, then where it was left; never rented.
    back = (await receive(onlooker))["payload"]["data"]["vehicleUpdated"]["vehicle"]
    while back is None or back["position"] != {"x": 30, "y": 30}:
        assert back is None or (back["status"], back["position"]) == ("AVAILABLE", {"x": 1, "y": 1})
        back = (await receive(onlooker))["payload"]["data"]["vehicleUpdated"]["vehicle"]
    assert back["status"] == "AVAILABLE"
    await onlooker.close()


async def test_own_rental_and_balance_and_admin_feeds(stack: Stack, server: str) -> None:
    admin = await stack.admin()
    bike = await create_vehicle(admin, "EBIKE", 1, 1)
    alice = await stack.customer("alice", 1000, admin)
    mine, money = await open_socket(server, alice), await open_socket(server, admin)
    await subscribe(mine, "subscription{activeRentalUpdated{id end cost}}", "rental")
    await subscribe(mine, "subscription{creditBalanceUpdated}", "balance")
    await subscribe(money, "subscription{paymentUpdated{customerId amount status deleted}}", "payments")
    await subscribe(money, "subscription{customerUpdated{name creditBalance}}", "customers")
    await until(lambda: stack.gateway.feed.subscribers("rentals") >= 1
                and stack.gateway.feed.subscribers("accounting") >= 2
                and stack.gateway.customers.changes.subscribers == 1)

    rental = await alice.data(START, v=bike["id"])
    await stack.settle()
    seen: dict[str, list[Any]] = {"rental": [], "balance": []}
    while len(seen["rental"]) < 2 or 880 not in seen["balance"]:
        message = await receive(mine)
        (value,) = message["payload"]["data"].values()
        seen[message["id"]].append(value)
    assert seen["rental"][:2] == [{"id": rental["id"], "end": None, "cost": 0},
                                  {"id": rental["id"], "end": None, "cost": 120}]

    payment = await alice.data("mutation{createPayment(amount:250){id}}")
    await admin.data("mutation($id:ID!){confirmPayment(id:$id){id}}", id=payment["id"])
    await stack.settle()
    # the two feeds interleave in no fixed order (they come from two services): collect both
    payments: list[dict[str, Any]] = []
    views: list[dict[str, Any]] = []
    while not any(v["creditBalance"] == 1130 for v in views):  # 1000 - 120 (unlocking fee) + 250
        data = (await receive(money))["payload"]["data"]
        views += [data["customerUpdated"]] if "customerUpdated" in data else []
        payments += [data["paymentUpdated"]] if "paymentUpdated" in data else []
    assert {"customerId": alice.id, "amount": 250, "status": "PENDING", "deleted": False} in payments
    assert views[-1] == {"name": "alice", "creditBalance": 1130}
    await mine.close()
    await money.close()


async def test_refusals_over_websocket(stack: Stack, server: str) -> None:
    alice = await stack.customer("alice")
    anonymous = await open_socket(server)
    await subscribe(anonymous, VEHICLES)
    assert (await receive(anonymous))["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    socket = await open_socket(server, alice)
    await subscribe(socket, "subscription{paymentUpdated{id}}")
    refused = await receive(socket)
    assert refused["type"] == "error" and refused["payload"][0]["message"] == "Not authorized"
    await subscribe(socket, "mutation{logout}", "2")  # mutations only over POST (cookies, CSRF rules)
    assert (await receive(socket))["type"] == "error"
    assert (await alice.data("{auth{username}}"))["username"] == "alice"
    with pytest.raises(InvalidStatus):  # a page on another site cannot open the user's socket
        await open_socket(server, alice, origin="https://evil.example")
    await anonymous.close()
    await socket.close()
