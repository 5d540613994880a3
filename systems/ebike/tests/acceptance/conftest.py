"""Fixtures of the acceptance tests: a fresh ebike behind its gateway per test, on each topology.

Every test runs twice: ``embedded`` (SQLite stores, consumers reading the source service's log) and
``distributed`` (PostgreSQL stores in fresh databases of the session's server, Kafka topics of the
session's broker fed by outbox relays, all in this process). Topic and group names carry a prefix
unique to the test, so no test sees another's events or offsets.

A distributed test takes seconds (each hop of an event is a relay publish and a consumer fetch), so
only a representative subset runs distributed: ``DISTRIBUTED`` names it; the other distributed
items are deselected.
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

# Not (yet) here: E5 (charging over 75 s of virtual time took over 40 s), E9 (passes, in 40 s) and
# E11 (an a-bike's position lagged behind after ``advance``: see issue 5).
DISTRIBUTED = {
    "test_e1_registration_session_roles", "test_e2_payments_and_credit_balance",
    "test_e4_start_rental_unlock_fee_and_availability",
    # section 0 (the fixes)
    "test_the_first_admin_can_also_come_from_the_command_line", "test_registering_admins_is_bootstrap_only",
    "test_payments_filter_by_status", "test_confirmed_payments_cannot_be_deleted",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the distributed variants of the tests outside ``DISTRIBUTED``."""
    here = Path(__file__).parent
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        distributed = callspec is not None and callspec.params.get("stack") == "distributed"
        if distributed and item.path.parent == here and getattr(item, "originalname", item.name) not in DISTRIBUTED:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
