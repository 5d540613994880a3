"""The academy on each topology: every acceptance test runs embedded and distributed (``junction.testing``);
distributed, the notifications go over RabbitMQ queues of the session's node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from academy.tests.conftest import Academy, open_academy, rabbit_names
from junction.mail import MailSink
from junction.rabbitmq import RabbitConfig
from junction.testing import TOPOLOGIES, Distributed, topology


@dataclass(frozen=True)
class Where:
    """The topology of one test: None/None embedded."""

    distributed: Distributed | None
    rabbit: RabbitConfig | None


@pytest.fixture(params=TOPOLOGIES)
async def where(request: pytest.FixtureRequest) -> AsyncIterator[Where]:
    """Embedded, or fresh PostgreSQL databases, Kafka topics and RabbitMQ queues of the session's servers."""
    async with topology(request, "academy") as distributed:
        rabbit = rabbit_names(request.getfixturevalue("rabbitmq_broker").url) if distributed else None
        yield Where(distributed, rabbit)


@pytest.fixture
async def academy(where: Where, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Academy]:
    """The academy, embedded or distributed."""
    async with open_academy(tmp_path / "data", mail_sink, where.distributed, where.rabbit) as running:
        yield running
