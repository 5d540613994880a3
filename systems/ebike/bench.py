"""ebike benchmarks behind ``junction bench``: they measure this system's services in-process."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from ebike.system import build
from junction.bench import percentile
from junction.runtime import Runtime

HISTORY_SIZES = (10, 1_000, 100_000)


async def balance(console: Console, quick: bool) -> dict[str, Any]:
    """Credit-balance latency for customers with 10, 1,000 and 100,000 records, next to a full recount."""
    sizes = (10, 100, 1_000) if quick else HISTORY_SIZES
    samples_per_size = 300 if quick else 2_000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(build(), Path(tmp), only=["accounting"])
        async with runtime:
            accounting = runtime.client("accounting")
            with Progress(console=console, transient=True) as progress:
                for size in sizes:
                    customer = f"bench-{size}"
                    task = progress.add_task(f"recording {size:,} expenses for {customer}", total=size)
                    for i in range(size):
                        answer = await accounting.put("/expenses", json={"customerId": customer, "rentalId": "bench",
                                                                         "amount": 1})
                        answer.raise_for_status()
                        if i % 500 == 0:
                            progress.update(task, completed=i)
                    progress.update(task, completed=size)
            recount = sqlite3.connect(Path(tmp) / "accounting.db")
            for size in sizes:
                customer = f"bench-{size}"
                path = f"/customers/{customer}/credit-balance"
                assert (await accounting.get(path)).json()["creditBalance"] == -size
                latencies = []
                for _ in range(samples_per_size):
                    started = time.perf_counter()
                    answer = await accounting.get(path)
                    latencies.append((time.perf_counter() - started) * 1000)
                    answer.raise_for_status()
                recounts = []  # the reference's way: sum every record on each query
                for _ in range(min(samples_per_size, 200)):
                    started = time.perf_counter()
                    recount.execute("SELECT sum(amount) FROM expenses WHERE customer_id = ?", (customer,)).fetchone()
                    recounts.append((time.perf_counter() - started) * 1000)
                results[str(size)] = {"p50_ms": round(percentile(latencies, 0.5), 4),
                                      "p99_ms": round(percentile(latencies, 0.99), 4),
                                      "mean_ms": round(statistics.fmean(latencies), 4),
                                      "recount_p50_ms": round(percentile(recounts, 0.5), 4)}
            recount.close()
    smallest, largest = results[str(sizes[0])], results[str(sizes[-1])]
    flatness = largest["p50_ms"] / smallest["p50_ms"]
    table = Table("records", "balance p50 (ms)", "p99 (ms)", "raw SQL recount p50 (ms)")
    for size in sizes:
        row = results[str(size)]
        table.add_row(f"{size:,}", f"{row['p50_ms']:.3f}", f"{row['p99_ms']:.3f}", f"{row['recount_p50_ms']:.3f}")
    console.print(table)
    console.print(f"largest/smallest p50: {flatness:.2f} (target <= 1.2; GET through the service's HTTP contract, "
                  "in-process)")
    return {"benchmark": "balance", "sizes": results, "largest_over_smallest_p50": round(flatness, 3)}


async def e2e(console: Console, quick: bool) -> dict[str, Any]:
    """Command accepted → projection updated: PUT /stations until the stations view has the row."""
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        runtime = Runtime(build(), Path(tmp), only=["stations"])
        async with runtime:
            stations = runtime.service("stations")
            worker = stations.subscriptions["projection:stations:stations"]
            client = runtime.client("stations")
            for i in range(200 if quick else 2_000):
                started = time.perf_counter()
                response = await client.put("/stations", json={"name": f"s{i}", "positionX": i, "positionY": 1})
                response.raise_for_status()
                target = await stations.store.head()
                while worker.position < target:
                    await worker.progressed.wait(1.0)
                samples.append((time.perf_counter() - started) * 1000)
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    table = Table("path", "samples", "p50 (ms)", "p99 (ms)", "target p99")
    table.add_row("PUT /stations → stations projection updated", str(len(samples)), f"{p50:.2f}", f"{p99:.2f}",
                  "≤ 20 ms")
    console.print(table)
    return {"benchmark": "e2e", "samples": len(samples), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}
