"""Benchmarks behind ``junction bench``: each prints a table and returns a JSON-ready dict.

Every figure is printed next to the raw baseline measured in the same run, with their ratio.
Benchmarks that need servers get them here: PostgreSQL is ``JUNCTION_DATABASE_URL``'s server or
the local cluster (``junction.infra.postgres``, as ``junction up --distributed`` starts it), with a
scratch database dropped afterwards; Kafka is ``JUNCTION_KAFKA_BOOTSTRAP`` or a private broker in a
temporary directory, stopped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from junction.clock import RealClock
from junction.events import Event
from junction.ids import Snowflake
from junction.sqlite import INSERT_EVENT, PRAGMAS, SCHEMA, SqliteStore
from junction.uow import UnitOfWork

log = structlog.get_logger()


@dataclass(frozen=True)
class BenchOptions:
    """What ``junction bench`` was asked for besides the scenario."""

    quick: bool = False  # fewer iterations (smoke runs)
    store: str = "sqlite"  # append: sqlite | postgres
    writers: tuple[int, ...] = (1, 8, 32)  # append --store postgres: concurrent writers, one round each
    distributed: bool = False  # e2e: PostgreSQL stores and Kafka instead of SQLite files


Scenario = Callable[[Console, BenchOptions], Coroutine[Any, Any, dict[str, Any]]]


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


async def bench_append(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Append throughput through the unit of work vs the raw driver: SQLite (default) or PostgreSQL."""
    if options.store == "postgres":
        return await bench_append_postgres(console, options)
    if options.store != "sqlite":
        raise ValueError(f"unknown store {options.store!r} (sqlite | postgres)")
    return await bench_append_sqlite(console, options.quick)


async def bench_append_sqlite(console: Console, quick: bool) -> dict[str, Any]:
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
    return {"benchmark": "append", "store": "sqlite", "per_transaction": rows}


# -- PostgreSQL ------------------------------------------------------------------------------------
RAW_INSERT = (
    "INSERT INTO raw.events (stream, version, xid, ord, id, type, key, occurred_at, schema_version, data,"
    " causation_id, correlation_id) VALUES ($1, $2, pg_current_xact_id(), 1, $3, $4, $5, $6, 1, $7, NULL, NULL)"
)


@contextlib.asynccontextmanager
async def postgres_database(console: Console, purpose: str) -> AsyncIterator[str]:
    """The DSN of a fresh scratch database, dropped afterwards with every ``<name>__*`` database.

    The server is ``JUNCTION_DATABASE_URL``'s, else the local cluster, started (and stopped again
    afterwards) when it does not run yet.
    """
    from junction.infra.postgres import from_environment
    from junction.postgres import create_database, database_dsn

    server = os.environ.get("JUNCTION_DATABASE_URL")
    cluster = None
    if not server:
        cluster = from_environment()
        if cluster.running():
            cluster = None  # someone else's: leave it running
            server = from_environment().dsn()
        else:
            with console.status("starting PostgreSQL (installing it first if needed)"):
                server = await asyncio.to_thread(cluster.start)
    name = f"junction_bench_{purpose}_{os.getpid()}"
    dsn = database_dsn(server, name)
    try:
        await drop_databases(server, name)  # left over by a killed run of this pid
        await create_database(dsn)
        yield dsn
    finally:
        try:
            await drop_databases(server, name)
        finally:
            if cluster is not None:
                await asyncio.to_thread(cluster.stop)


@contextlib.asynccontextmanager
async def kafka_bootstrap(console: Console) -> AsyncIterator[str]:
    """``JUNCTION_KAFKA_BOOTSTRAP``, else the address of a private broker in a temporary directory,
    stopped (and its data removed) afterwards."""
    from junction.kafka.broker import KafkaBroker, free_port

    external = os.environ.get("JUNCTION_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    with tempfile.TemporaryDirectory(prefix="junction-bench-kafka-") as home:
        broker = KafkaBroker(Path(home), port=free_port(), controller_port=free_port())
        with console.status("starting Kafka (fetching the jars from Maven Central the first time)"):
            await asyncio.to_thread(broker.start, fresh=True, attached=True)
        try:
            yield broker.bootstrap
        finally:
            await asyncio.to_thread(broker.stop)


async def drop_databases(server: str, name: str) -> None:
    """Drop database ``name`` and the ``<name>__*`` ones (a system's services), closing their sessions."""
    import asyncpg

    from junction.postgres import database_dsn, quote_identifier

    admin = await asyncpg.connect(database_dsn(server, "postgres"))
    try:
        rows = await admin.fetch("SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $2)",
                                 name, f"{name}__")
        for row in rows:
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(row[0])} WITH (FORCE)")
    finally:
        await admin.close()


async def raw_postgres_append(dsn: str, writers: int, per_writer: int, round_: int) -> float:
    """Events/s of plain asyncpg: ``writers`` connections, each inserting one row per transaction (an
    autocommit INSERT: the fewest round trips a transaction can take) into a table with the store's
    layout and indexes, each to its own stream, with a row built as a hand-written service would."""
    import asyncpg

    connections = [await asyncpg.connect(dsn) for _ in range(writers)]
    counter = itertools.count(1)

    async def write(connection: asyncpg.Connection, writer: int) -> None:
        stream = f"raw-{round_}-{writer}"
        for version in range(1, per_writer + 1):
            payload = json.dumps({"id": str(version), "customerId": "c", "amount": 100})
            await connection.execute(RAW_INSERT, stream, version, next(counter), "BenchRecorded", stream,
                                     time.time(), payload)

    try:
        for connection in connections:  # prepare outside the measurement, as asyncpg caches it after
            await connection.prepare(RAW_INSERT)
        started = time.perf_counter()
        await asyncio.gather(*(write(c, w) for w, c in enumerate(connections)))
        elapsed = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    return writers * per_writer / elapsed


async def store_postgres_append(store: Any, writers: int, per_writer: int, round_: int) -> float:
    """Events/s through the unit of work into the PostgreSQL store: ``writers`` tasks, each appending one
    event per unit of work (one transaction) to its own stream with the expected version."""
    clock, ids = RealClock(), Snowflake(1)

    async def write(writer: int) -> None:
        stream = f"ours-{round_}-{writer}"
        for version in range(per_writer):
            uow = UnitOfWork(store, clock, ids)
            uow.append(stream, BenchRecorded(id=str(version), customer_id="c", amount=100), expected_version=version)
            await uow.commit()

    started = time.perf_counter()
    await asyncio.gather(*(write(w) for w in range(writers)))
    return writers * per_writer / (time.perf_counter() - started)


async def bench_append_postgres(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Append throughput through the unit of work into the PostgreSQL store vs raw asyncpg inserts,
    per number of concurrent writers (one event per transaction, each writer its own stream)."""
    from junction.postgres import PostgresStore

    repeats = 1 if options.quick else 3
    total = 60 if options.quick else 3_000  # events per measurement, shared by the writers
    rows: dict[str, Any] = {}
    table = Table("writers", "raw asyncpg (events/s)", "junction unit of work (events/s)", "ratio")
    async with postgres_database(console, "append") as dsn:
        store = PostgresStore("bench", dsn)
        await store.open()
        try:
            await store.pool.execute("CREATE SCHEMA raw; CREATE TABLE raw.events (LIKE junction.events INCLUDING ALL)")
            rounds = itertools.count()
            await raw_postgres_append(dsn, 2, 5, next(rounds))  # warm up both paths (plans, pools)
            await store_postgres_append(store, 2, 5, next(rounds))
            for writers in options.writers:
                per_writer = max(1, total // writers)
                raws, ours = [], []
                for repeat in range(repeats):
                    # each measurement starts from empty tables; the order alternates so neither side
                    # always runs on a freshly checkpointed server
                    await store.pool.execute("TRUNCATE raw.events, junction.events")
                    if repeat % 2:
                        ours.append(await store_postgres_append(store, writers, per_writer, next(rounds)))
                        raws.append(await raw_postgres_append(dsn, writers, per_writer, next(rounds)))
                    else:
                        raws.append(await raw_postgres_append(dsn, writers, per_writer, next(rounds)))
                        ours.append(await store_postgres_append(store, writers, per_writer, next(rounds)))
                raw, our = statistics.median(raws), statistics.median(ours)
                rows[str(writers)] = {"raw_events_per_s": round(raw), "junction_events_per_s": round(our),
                                      "ratio": round(our / raw, 3)}
                table.add_row(str(writers), f"{raw:,.0f}", f"{our:,.0f}", f"{our / raw:.2f}x")
        finally:
            await store.close()
    console.print(table)
    console.print(f"target: ratio >= 0.7 at 8 writers (median of {repeats}; {total:,} events per measurement, one per"
                  " transaction, each writer its own stream; raw = autocommit INSERTs into a copy of the events table)")
    return {"benchmark": "append", "store": "postgres", "writers": rows}


def scenarios() -> dict[str, Scenario]:
    """The platform's benchmarks plus every installed system's (``System.benchmarks``); a system that
    cannot be loaded is left out (with a warning) rather than taking the platform's benchmarks down."""
    from junction import systems

    found: dict[str, Scenario] = {"append": bench_append}
    for name in systems.available():
        try:
            spec = systems.load(name)
        except Exception as failure:
            log.warning("system not loaded: its benchmarks are left out", system=name, error=repr(failure))
            continue
        found.update(spec.benchmarks)
    return found
