"""``junction bench shop``: placing orders through the gateway, next to the raw gRPC decrement, in one run.

One embedded shop (SQLite; a mail sink process receives the confirmations) serves both paths at each
concurrency level: "order" is a full ``POST /api/order`` handed to the gateway's ASGI app (the proxy,
the order service's validation, the gRPC decrement over loopback, the commit of the order and its
event), while the notification service consumes and mails meanwhile; "grpc" is the decrement alone,
``CheckAndReduceInventory`` from a client stub. Their ratio is what a placement costs beyond taking
the stock.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from junction.bench import percentile
from junction.mail.process import mail_sink_process
from junction.testing import running
from junction.transport import AsgiCaller
from shop.contracts.inventory import InventoryRequest, InventoryServiceStub
from shop.system import build

LEVELS = (1, 4, 16, 64)
ORDER = {"skuCode": "BENCH", "price": 29.99, "quantity": 1,
         "userDetails": {"userId": "bench", "email": "bench@example.com", "firstName": "Ben", "lastName": "Ch"}}


async def _measure(call: Callable[[], Awaitable[None]], count: int, concurrency: int) -> dict[str, Any]:
    """``count`` calls from ``concurrency`` callers: calls per second, p50 and p99 latency (ms)."""
    latencies: list[float] = []

    async def caller(calls: int) -> None:
        for _ in range(calls):
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    share = max(1, count // concurrency)
    started = time.perf_counter()
    await asyncio.gather(*(caller(share) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"per_s": round(len(latencies) / elapsed), "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2)}


async def run(console: Console, quick: bool) -> dict[str, Any]:
    """Orders/s and p99 per concurrency level, with the gRPC decrement's beside them."""
    count = 200 if quick else 2_000
    levels: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with mail_sink_process(Path(tmp) / "mail") as smtp_port:
            previous = os.environ.get("JUNCTION_SMTP_PORT")
            os.environ["JUNCTION_SMTP_PORT"] = str(smtp_port)  # the confirmations go to this run's sink
            try:
                async with running(build(), Path(tmp) / "data") as runtime:
                    gateway = AsgiCaller("gateway", runtime.app)
                    status, _ = await gateway("POST", "/api/inventory", b'{"skuCode":"BENCH","quantity":2000000000}')
                    assert status == 201
                    body = json.dumps(ORDER).encode()
                    stub = runtime.transport.channels.stub("inventory", InventoryServiceStub)
                    take = InventoryRequest(sku_code="BENCH", quantity=1)

                    async def order() -> None:
                        status, answer = await gateway("POST", "/api/order", body)
                        assert status == 201, answer

                    async def decrement() -> None:
                        assert (await stub.CheckAndReduceInventory(take, timeout=10)).success

                    await _measure(order, 50, 4)  # warm up: connections, caches
                    await _measure(decrement, 50, 4)
                    for concurrency in LEVELS:
                        placed = await _measure(order, count, concurrency)
                        raw = await _measure(decrement, count, concurrency)
                        levels.append({"concurrency": concurrency, "order": placed, "grpc": raw,
                                       "ratio": round(raw["per_s"] / max(placed["per_s"], 1), 2)})
            finally:
                if previous is None:
                    os.environ.pop("JUNCTION_SMTP_PORT", None)
                else:
                    os.environ["JUNCTION_SMTP_PORT"] = previous
    table = Table("concurrency", "orders/s", "p50 (ms)", "p99 (ms)", "gRPC decrements/s", "p99 (ms)", "ratio")
    for level in levels:
        placed, raw = level["order"], level["grpc"]
        table.add_row(str(level["concurrency"]), f"{placed['per_s']:,}", f"{placed['p50_ms']:.2f}",
                      f"{placed['p99_ms']:.2f}", f"{raw['per_s']:,}", f"{raw['p99_ms']:.2f}", f"{level['ratio']:.2f}x")
    console.print(table)
    console.print("orders: POST /api/order through the gateway (proxy, validation, gRPC decrement, order + event "
                  "committed; notification mailing meanwhile); gRPC: CheckAndReduceInventory alone. Embedded, SQLite.")
    return {"benchmark": "shop", "orders_per_level": count, "levels": levels}
