"""The PostgreSQL server for tests: the project's private cluster, started once per pytest session.

``postgres_server`` installs PostgreSQL when it is missing and starts the cluster under ``var/pg``
(``junction.infra.postgres``; ``JUNCTION_PG_DSN`` points the tests at another server instead),
migrates a template database once, and hands each test fresh databases copied from it. A thread of
its own keeps two copies ready and drops used ones, so creating and dropping (a quarter of a second
each with fsync on) overlaps the tests instead of adding to them. When the server cannot be had,
the tests that need it fail with the reason in CI (``CI=true``) and are skipped with it elsewhere.
A cluster this session started is stopped at its end (``JUNCTION_PG_KEEP=1`` keeps it running).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import pytest

from junction.infra.postgres import PostgresError, from_environment, in_ci
from junction.postgres import PostgresStore, database_dsn, quote_identifier

T = TypeVar("T")
STOCK = 2  # fresh databases kept ready


class PostgresServer:
    """A running server: its admin DSN, a migrated template, and fresh copies of it on demand."""

    def __init__(self, dsn: str, template: str) -> None:
        self.dsn = dsn
        self.template = template
        self._names = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="postgres-admin", daemon=True)
        self._thread.start()
        self._lock = self._call(self._make_lock())
        self._stock: asyncio.Queue[str] = self._call(self._make_queue())
        self._jobs: set[concurrent.futures.Future[Any]] = set()
        for _ in range(STOCK):
            self._submit(self._create())

    # -- what tests use --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A fresh database with the platform schema; its DSN. It and the databases named after it
        (``<name>__<service>``: other services of the same test) are dropped afterwards."""
        name = await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stock.get(), self._loop))
        if name.startswith("!"):
            raise RuntimeError(f"could not create a test database: {name[1:]}")
        self._submit(self._create())
        try:
            yield database_dsn(self.dsn, name)
        finally:
            self._submit(self._drop(name))

    def close(self) -> None:
        """Finish pending work, drop every database this session made, stop the admin thread."""
        for job in list(self._jobs):
            with contextlib.suppress(Exception):
                job.result(timeout=60)
        with contextlib.suppress(Exception):
            self._call(drop_databases(self.dsn, f"junction_test_{os.getpid()}_"))
            self._call(drop_databases(self.dsn, self.template, exact=True))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- the admin thread ------------------------------------------------------------------------
    def _call(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result()

    def _submit(self, work: Coroutine[Any, Any, Any]) -> None:
        job = asyncio.run_coroutine_threadsafe(work, self._loop)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    @staticmethod
    async def _make_lock() -> asyncio.Lock:
        return asyncio.Lock()

    @staticmethod
    async def _make_queue() -> asyncio.Queue[str]:
        return asyncio.Queue()

    async def _create(self) -> None:
        name = f"junction_test_{os.getpid()}_{next(self._names)}"
        try:
            async with self._lock:  # one admin statement at a time
                admin = await asyncpg.connect(self.dsn)
                try:
                    await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
                    await admin.execute(
                        f"CREATE DATABASE {quote_identifier(name)} TEMPLATE {quote_identifier(self.template)}")
                finally:
                    await admin.close()
        except Exception as error:  # the test waiting for it fails with the reason
            name = f"!{type(error).__name__}: {error}"
        self._stock.put_nowait(name)

    async def _drop(self, name: str) -> None:
        async with self._lock:
            await drop_databases(self.dsn, name, exact=True)
            await drop_databases(self.dsn, f"{name}__")


async def drop_databases(dsn: str, prefix: str, exact: bool = False) -> None:
    """Drop the databases whose names start with ``prefix`` (or are it, when ``exact``), closing their sessions."""
    admin = await asyncpg.connect(dsn)
    try:
        query = "SELECT datname FROM pg_database WHERE " + ("datname = $1" if exact else "starts_with(datname, $1)")
        for row in await admin.fetch(query, prefix):
            await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(row[0])} WITH (FORCE)")
    finally:
        await admin.close()


async def make_template(dsn: str, name: str) -> None:
    """A database with the platform schema migrated, to copy for each test."""
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
    finally:
        await admin.close()
    store = PostgresStore("template", database_dsn(dsn, name))
    await store.open()  # runs the migrations
    await store.close()


def run_in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a loop of its own in another thread (callable from inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's server (started on first use), or a failure (CI) / skip saying why there is none."""
    cluster = from_environment()
    external = os.environ.get("JUNCTION_PG_DSN")
    started_here = False
    try:
        if external:
            dsn = external
        else:
            started_here = not cluster.running()
            began = time.monotonic()
            dsn = cluster.start()
            if started_here:
                print(f"\npostgresql on {dsn}, up in {time.monotonic() - began:.1f} s")
        template = f"junction_test_template_{os.getpid()}"
        run_in_thread(make_template(dsn, template))
    except (PostgresError, OSError, asyncpg.PostgresError) as error:
        message = f"PostgreSQL is not available for the tests: {error}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    server = PostgresServer(dsn, template)
    try:
        yield server
    finally:
        server.close()
        if started_here and not os.environ.get("JUNCTION_PG_KEEP"):
            cluster.stop()


@pytest.fixture
async def postgres_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The DSN of a fresh database with the platform schema (for PostgreSQL-only tests)."""
    async with postgres_server.database() as dsn:
        yield dsn
