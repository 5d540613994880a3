"""ebike benchmarks behind ``junction bench``: they measure this system's services in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy.engine import make_url

from ebike.system import build
from junction.bench import kafka_bootstrap, percentile, postgres_database
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
    return {"benchmark": "e2e", "topology": "embedded", "samples": len(samples), "p50_ms": round(p50, 3),
            "p99_ms": round(p99, 3)}


async def e2e_distributed(console: Console, quick: bool) -> dict[str, Any]:
    """Command accepted → projection updated through Kafka: PUT /stations commits to the stations
    service's PostgreSQL store, its outbox relay publishes the event to Kafka, and the projection's
    consumer group applies it in its own transaction; the clock stops when that transaction committed.

    One process hosts the service, its relay and its consumer, as one process per service does in
    ``junction up --distributed``; each command waits for the previous one's projection.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    from junction.kafka import KafkaConfig, KafkaSource, kafka_sources, start_relays
    from junction.postgres import postgres_stores

    count, warm_up = (50, 10) if quick else (2_000, 50)
    samples: list[float] = []
    async with postgres_database(console, "e2e") as dsn, kafka_bootstrap(console) as bootstrap:
        # names of this run only, so an external broker's older topics and groups are never reused
        config = KafkaConfig(f"ebike-bench-{os.getpid()}-{int(time.time())}", bootstrap,
                             group_template="{system}.{service}.{subscription}")
        stores = postgres_stores(dsn, prefix=f"{make_url(dsn).database}__")
        with tempfile.TemporaryDirectory() as tmp:
            runtime = Runtime(build(), Path(tmp), only=["stations"], store_factory=stores,
                              source_factory=kafka_sources(config))
            async with runtime:
                start_relays(runtime, config)
                stations = runtime.service("stations")
                worker = stations.subscriptions["projection:stations:stations"]
                source = worker.source
                while not (isinstance(source, KafkaSource) and source.joined):  # group joined, partitions assigned
                    await asyncio.sleep(0.01)
                client = runtime.client("stations")
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task("PUT /stations → projection through Kafka", total=count + warm_up)
                    for i in range(count + warm_up):
                        handled = worker.handled
                        started = time.perf_counter()
                        response = await client.put("/stations", json={"name": f"s{i}", "positionX": i,
                                                                       "positionY": 1})
                        response.raise_for_status()
                        while worker.handled == handled:  # one event: handled once its transaction committed
                            await worker.progressed.wait(1.0)
                        if i >= warm_up:  # the first commands also pay for connections and group joins
                            samples.append((time.perf_counter() - started) * 1000)
                        progress.advance(task)
        if os.environ.get("JUNCTION_KAFKA_BOOTSTRAP"):  # a shared broker: take this run's topic away again
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
            with contextlib.suppress(Exception):
                await admin.start()
                await admin.delete_topics([config.topic("stations")])
            with contextlib.suppress(Exception):
                await admin.close()
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    table = Table("path", "samples", "p50 (ms)", "p99 (ms)", "max (ms)", "target p99")
    table.add_row("PUT /stations → PostgreSQL → Kafka → stations projection", str(len(samples)), f"{p50:.2f}",
                  f"{p99:.2f}", f"{max(samples):.2f}", "≤ 100 ms")
    console.print(table)
    return {"benchmark": "e2e", "topology": "distributed", "samples": len(samples), "p50_ms": round(p50, 3),
            "p99_ms": round(p99, 3), "max_ms": round(max(samples), 3)}
