"""The store contract's fixtures: one ``store_factory`` per adapter, every test runs against each.

To add an adapter, add one entry to ``ADAPTERS``: a function that, given the test's pytest
``request`` and ``tmp_path``, returns an async context manager yielding a factory
``make(service, metadata) -> Store``, and cleaning up when the test ends. Calling the factory again
with the same service name must give a store over the *same* durable state (that is how tests
prove durability: close, make again, open, read). Each test must start from empty state.

``postgres`` gives each test a fresh database (copied from a migrated template on the session's
server, see ``postgres_server``) and drops it afterwards; other service names get databases of
their own, as in the distributed topology.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from junction.postgres import PostgresStore, database_dsn
from junction.sqlite import SqliteStore
from junction.store import Store
from tests.contract.postgres_server import PostgresServer

# The service's own tables, as a service would declare them with SQLAlchemy Core.
METADATA = MetaData()
ACCOUNTS = Table(
    "accounts",
    METADATA,
    Column("id", String, primary_key=True),
    Column("email", String, nullable=False, unique=True),
    Column("balance", Integer, nullable=False, default=0),
)


class StoreFactory(Protocol):
    """Makes an (unopened) store of ``service``; the same name means the same durable state."""

    def __call__(self, service: str = "svc", metadata: MetaData | None = METADATA) -> Store: ...


@contextlib.asynccontextmanager
async def sqlite_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    def make(service: str = "svc", metadata: MetaData | None = METADATA) -> Store:
        return SqliteStore(service, tmp_path / f"{service}.db", metadata)

    yield make


@contextlib.asynccontextmanager
async def postgres_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    async with server.database() as dsn:
        def make(service: str = "svc", metadata: MetaData | None = METADATA) -> Store:
            if service == "svc":
                return PostgresStore(service, dsn, metadata)
            name = database_dsn(dsn, f"{dsn.rsplit('/', 1)[-1]}__{service}")
            return PostgresStore(service, name, metadata, create=True)

        yield make


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[StoreFactory]]] = {
    "sqlite": sqlite_adapter,
    "postgres": postgres_adapter,  # a fresh database per test, dropped afterwards
}


@pytest.fixture(params=sorted(ADAPTERS))
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """A factory of stores of one adapter (the test runs once per adapter)."""
    async with ADAPTERS[request.param](request, tmp_path) as factory:
        yield factory


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    """An open, empty store of the service ``svc`` with the ``accounts`` table."""
    opened = store_factory()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
