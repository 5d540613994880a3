"""Fixtures of the acceptance tests: a fresh ebike behind its gateway per test, on each topology.

Every test runs twice: ``embedded`` (SQLite stores, consumers reading the source service's log) and
``distributed`` (PostgreSQL stores in fresh databases of the session's server, Kafka topics of the
session's broker fed by outbox relays, all in this process; ``junction.testing``). Topic and group
names carry a prefix unique to the test, so no test sees another's events or offsets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ebike.gateway.app import Settings
from ebike.tests.acceptance.harness import Stack, open_stack, settings_with_keys
from junction.testing import TOPOLOGIES, topology


@pytest.fixture(scope="session")
def gateway_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One RSA key pair for the whole session (generating one costs more than a test)."""
    return settings_with_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=TOPOLOGIES)
async def stack(request: pytest.FixtureRequest, tmp_path: Path, gateway_settings: Settings) -> AsyncIterator[Stack]:
    async with topology(request, "ebike") as distributed, open_stack(tmp_path / "data", gateway_settings,
                                                                      distributed) as running:
        yield running
