"""The academy on each topology: every acceptance test runs embedded and distributed (``junction.testing``);
distributed, the notifications go over RabbitMQ queues of the session's node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from academy.system import build
from academy.tests.conftest import Academy, open_academy
from junction.mail import MailSink
from junction.testing import TOPOLOGIES, Distributed, topology


@pytest.fixture(params=TOPOLOGIES)
async def where(request: pytest.FixtureRequest) -> AsyncIterator[Distributed | None]:
    """Embedded (None), or fresh PostgreSQL databases, Kafka topics and RabbitMQ queues of the session's servers."""
    async with topology(request, build()) as distributed:
        yield distributed


@pytest.fixture
async def academy(where: Distributed | None, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Academy]:
    """The academy, embedded or distributed."""
    async with open_academy(tmp_path / "data", mail_sink, where) as running:
        yield running
