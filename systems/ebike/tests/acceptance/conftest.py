"""Fixtures of the acceptance tests: a fresh ebike behind its gateway per test, on each topology.

Every test runs twice: ``embedded`` (SQLite stores, consumers reading the source service's log) and
``distributed`` (PostgreSQL stores in fresh databases of the session's server, Kafka topics of the
session's broker fed by outbox relays, all in this process). Topic and group names carry a prefix
unique to the test, so no test sees another's events or offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.contract.postgres_server import PostgresServer

from ebike.gateway.app import Settings
from ebike.tests.acceptance.harness import Distributed, Stack, open_stack, settings_with_keys
from junction.kafka import KafkaConfig
from junction.kafka.broker import KafkaBroker


@pytest.fixture(scope="session")
def gateway_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One RSA key pair for the whole session (generating one costs more than a test)."""
    return settings_with_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(params=["embedded", "distributed"])
async def stack(request: pytest.FixtureRequest, tmp_path: Path, gateway_settings: Settings) -> AsyncIterator[Stack]:
    if request.param == "embedded":
        async with open_stack(tmp_path / "data", gateway_settings) as running:
            yield running
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    run = f"t{uuid.uuid4().hex[:8]}"  # this test's topics and consumer groups
    kafka = KafkaConfig("ebike", broker.bootstrap, topic_template=run + ".{system}.{service}",
                        group_template=run + ".{service}.{subscription}")
    async with server.database() as dsn, open_stack(tmp_path / "data", gateway_settings,
                                                     Distributed(dsn, kafka)) as running:
        yield running
