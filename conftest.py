"""Fixtures shared by every test tree (``tests/`` and ``systems/``): the private PostgreSQL server, the Kafka
broker and the RabbitMQ node, each started once per session on first use; and a real mail sink per test."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.contract.kafka_broker import kafka_broker  # noqa: F401 (fixture)
from tests.contract.postgres_server import postgres_database, postgres_server  # noqa: F401 (fixtures)
from tests.contract.rabbitmq_broker import rabbitmq_broker  # noqa: F401 (fixture)

from junction.mail import MailSink
from junction.mail.testing import mail_sink_in


@pytest.fixture
async def mail_sink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MailSink]:
    """A real SMTP sink on free ports, where the mails of the systems this test starts go."""
    async with mail_sink_in(tmp_path, monkeypatch) as sink:
        yield sink
