"""Benchmarks behind ``junction bench``: each prints a table and returns a JSON-ready dict.

Every figure is printed next to the raw baseline measured in the same run, with their ratio.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from junction.clock import RealClock
from junction.events import Event
from junction.ids import Snowflake
from junction.sqlite import INSERT_EVENT, PRAGMAS, SCHEMA, SqliteStore
from junction.uow import UnitOfWork

Scenario = Callable[[Console, bool], Coroutine[Any, Any, dict[str, Any]]]


class BenchRecorded(Event):
    """A small event, about the size of a payment."""

    event_name = "BenchRecorded"

    id: str
    customer_id: str
    amount: int


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def raw_append(path: Path, total: int, per_transaction: int) -> float:
    """Events/s with plain sqlite3: the same schema, pragmas and row content, no platform.

    The baseline builds each row as a hand-written service would have to (a counter id, the
    payload through ``json.dumps``) and inserts a transaction's rows with one ``executemany``.
    """
    connection = sqlite3.connect(path, isolation_level=None)
    for pragma in PRAGMAS:
        connection.execute(pragma)
    connection.executescript(SCHEMA)
    counter = 0
    started = time.perf_counter()
    for batch in range(total // per_transaction):
        rows = []
        stream = f"s-{batch}"
        for i in range(per_transaction):
            counter += 1
            payload = json.dumps({"id": str(i), "customerId": "c", "amount": 100})
            rows.append((counter, stream, i + 1, "BenchRecorded", stream, time.time(), 1, payload, None, None))
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(INSERT_EVENT, rows)
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return total / elapsed


async def unit_of_work_append(path: Path, total: int, per_transaction: int) -> float:
    """Events/s appended through the unit of work (typed events, ids, envelopes, one commit each)."""
    store = SqliteStore("bench", path)
    await store.open()
    clock, ids = RealClock(), Snowflake(1)
    started = time.perf_counter()
    for batch in range(total // per_transaction):
        uow = UnitOfWork(store, clock, ids)
        stream = f"s-{batch}"
        uow.append(stream, *(BenchRecorded(id=str(i), customer_id="c", amount=100) for i in range(per_transaction)),
                   expected_version=0)
        await uow.commit()
    elapsed = time.perf_counter() - started
    await store.close()
    return total / elapsed


async def bench_append(console: Console, quick: bool) -> dict[str, Any]:
    """Append throughput through the unit of work vs raw sqlite3 (1 and 100 events per transaction)."""
    rows: dict[str, Any] = {}
    table = Table("events per transaction", "raw sqlite3 (events/s)", "junction unit of work (events/s)", "ratio")
    for per_transaction, total in ((1, 3_000 if quick else 20_000), (100, 20_000 if quick else 200_000)):
        raws, ours = [], []
        for repeat in range(1 if quick else 3):
            with tempfile.TemporaryDirectory() as tmp:
                raws.append(raw_append(Path(tmp) / f"raw{repeat}.db", total, per_transaction))
                ours.append(await unit_of_work_append(Path(tmp) / f"uow{repeat}.db", total, per_transaction))
        raw, our = statistics.median(raws), statistics.median(ours)
        rows[str(per_transaction)] = {"raw_events_per_s": round(raw), "junction_events_per_s": round(our),
                                      "ratio": round(our / raw, 3)}
        table.add_row(str(per_transaction), f"{raw:,.0f}", f"{our:,.0f}", f"{our / raw:.2f}x")
    console.print(table)
    console.print("target: ratio >= 0.8 (median of runs; WAL, synchronous=NORMAL, same schema)")
    return {"benchmark": "append", "per_transaction": rows}


def scenarios() -> dict[str, Scenario]:
    """The platform's benchmarks plus every installed system's (``System.benchmarks``)."""
    from junction import systems

    found: dict[str, Scenario] = {"append": bench_append}
    for name in systems.available():
        found.update(systems.load(name).benchmarks)
    return found
