"""``junction bench gateway``: GraphQL through the gateway next to the same resolver logic without it.

Both paths run in-process on one embedded ebike, in the same run: "gateway" is a full GraphQL POST
to the public app (HTTP parsing, session check against auth, cached document, execution, JSON);
"direct" is what the resolver itself does (the service call and the DTO mapping). The ratio of the
two p50 latencies is the gateway's cost; the target is at most 1.5x.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from ebike.gateway import dto
from ebike.system import build
from junction.bench import percentile
from junction.runtime import Runtime
from junction.transport import AsgiCaller

PASSWORD = "password123"
QUERIES = {
    "availableVehicles": "{availableVehicles{id type position{x y} battery available status}}",
    "creditBalance": "{creditBalance}",
}


async def _latencies(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    """Milliseconds per sequential call."""
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _throughput(call: Callable[[], Awaitable[Any]], count: int, workers: int = 8) -> float:
    """Calls per second with ``workers`` concurrent callers."""
    async def worker() -> None:
        for _ in range(count // workers):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return (count // workers * workers) / (time.perf_counter() - started)


async def _figures(samples: list[float], call: Callable[[], Awaitable[Any]], count: int) -> dict[str, Any]:
    """p50, p99 and concurrent throughput of one path."""
    return {"p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3),
            "req_per_s": round(await _throughput(call, count))}


async def gateway(console: Console, quick: bool) -> dict[str, Any]:
    """Latency and throughput of two queries, through the gateway and direct."""
    count = 300 if quick else 3_000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with Runtime(build(), Path(tmp)) as runtime:
            transport = httpx.ASGITransport(app=runtime.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as admin, \
                    httpx.AsyncClient(transport=transport, base_url="http://bench") as customer:
                customer_id = await _set_up(runtime, admin, customer)
                # the resolvers' own path to the services: the platform transport, then the mapping
                vehicles, accounting = runtime.transport.client("vehicles"), runtime.transport.client("accounting")

                async def direct_vehicles() -> Any:
                    answer = await vehicles.get(f"/vehicles/available?customerId={customer_id}")
                    return [dto.vehicle(v) for v in answer]

                async def direct_balance() -> Any:
                    answer = await accounting.get(f"/customers/{customer_id}/credit-balance")
                    return int(answer["creditBalance"])

                # The client side of HTTP is not the gateway's cost: requests go straight into its ASGI app
                # (as a server would hand them over), with the customer's session cookie.
                gateway_app = AsgiCaller("gateway", runtime.app)
                cookie = {"cookie": f"jwt={customer.cookies['jwt']}"}

                def through_gateway(query: str) -> Callable[[], Awaitable[Any]]:
                    body = json.dumps({"query": query}).encode()

                    async def call() -> Any:
                        status, answer = await gateway_app("POST", "/graphql", body, cookie)
                        assert status == 200 and b'"errors"' not in answer, answer
                    return call

                for name, direct in (("availableVehicles", direct_vehicles), ("creditBalance", direct_balance)):
                    via = through_gateway(QUERIES[name])
                    await _latencies(via, 20)  # warm up (document cache, connections)
                    await _latencies(direct, 20)
                    ours, base = await _latencies(via, count), await _latencies(direct, count)
                    results[name] = {"gateway": await _figures(ours, via, count),
                                     "direct": await _figures(base, direct, count)}
                    results[name]["p50_ratio"] = round(percentile(ours, 0.5) / percentile(base, 0.5), 2)
    table = Table("query", "path", "req/s", "p50 (ms)", "p99 (ms)", "p50 ratio")
    for name, figures in results.items():
        for path in ("gateway", "direct"):
            row = figures[path]
            ratio = f"{figures['p50_ratio']:.2f}x" if path == "gateway" else ""
            table.add_row(name if path == "gateway" else "", path, f"{row['req_per_s']:,}", f"{row['p50_ms']:.2f}",
                          f"{row['p99_ms']:.2f}", ratio)
    console.print(table)
    console.print("gateway: GraphQL POST with session check; direct: the resolver's service call and mapping. "
                  "target: p50 ratio <= 1.5x")
    return {"benchmark": "gateway", "samples": count, "queries": results}


async def _set_up(runtime: Runtime, admin: httpx.AsyncClient, customer: httpx.AsyncClient) -> str:
    """An admin, a customer with credit, 20 vehicles; the customer's id."""
    async def gql(client: httpx.AsyncClient, query: str, **variables: Any) -> Any:
        answer = (await client.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in answer, answer
        (value,) = answer["data"].values()
        return value

    signup = "mutation($u:String!,$p:String!){%s(username:$u,password:$p){id}}"
    await gql(admin, signup % "registerAdmin", u="bench-admin", p=PASSWORD)
    me = await gql(customer, signup % "registerCustomer", u="bench-customer", p=PASSWORD)
    payment = await gql(customer, "mutation{createPayment(amount:100000){id}}")
    await gql(admin, "mutation($id:ID!){confirmPayment(id:$id){id}}", id=payment["id"])
    for i in range(20):
        await gql(admin, "mutation($x:Float!){createVehicle(input:{type:EBIKE,position:{x:$x,y:1}}){id}}", x=i)
    await runtime.settle()
    return str(me["id"])
