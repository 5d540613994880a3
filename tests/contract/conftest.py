"""The store contract's fixtures: one ``store_factory`` per adapter, every test runs against each.

To add an adapter (PostgreSQL), add one entry to ``ADAPTERS``: a function that, given the test's
``tmp_path``, returns a factory ``make(service, metadata) -> Store``. Calling the factory again
with the same service name must give a store over the *same* durable state (that is how tests
prove durability: close, make again, open, read). Each test must start from empty state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table

from junction.sqlite import SqliteStore
from junction.store import Store

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


def sqlite_adapter(tmp_path: Path) -> StoreFactory:
    def make(service: str = "svc", metadata: MetaData | None = METADATA) -> Store:
        return SqliteStore(service, tmp_path / f"{service}.db", metadata)

    return make


ADAPTERS: dict[str, Callable[[Path], StoreFactory]] = {
    "sqlite": sqlite_adapter,
    # "postgres": postgres_adapter,  # a fresh database per test, dropped afterwards
}


@pytest.fixture(params=sorted(ADAPTERS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory of stores of one adapter (the test runs once per adapter)."""
    return ADAPTERS[request.param](tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    """An open, empty store of the service ``svc`` with the ``accounts`` table."""
    opened = store_factory()
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
