"""Faults of the distributed topology: Kafka down (G7), a service's database down (G5).

G7: while the broker is down ``POST /users`` still answers 201 (the user and its event commit in the
user service's database, the log is the outbox); once the broker is back the relay publishes, and the
user is on ``user-events`` once, welcomed once and counted once. G5: when the user service's database
refuses connections, ``/health`` says ``database: unhealthy`` (503), and healthy again once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from tests.contract.postgres_server import PostgresServer

from junction.kafka.broker import KafkaBroker
from junction.kafka.relay import CHECKPOINT
from junction.mail import MailSink
from junction.postgres import quote_identifier
from junction.testing import topology
from pipeline.tests.conftest import ALICE, Pipeline, open_pipeline

WAIT = 90.0  # bound on how long a recovery may take, in real time (a broker restart is real)


@pytest.fixture(params=["distributed"])
async def pipeline(request: pytest.FixtureRequest, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Pipeline]:
    """The pipeline, distributed only (embedded has no broker and no database server to lose)."""
    async with topology(request, "pipeline") as distributed, open_pipeline(tmp_path / "data", mail_sink,
                                                                            distributed) as running_pipeline:
        yield running_pipeline


async def health(pipeline: Pipeline) -> tuple[int, dict[str, object]]:
    """The gateway's /health."""
    answer = await pipeline.http.get("/health")
    return answer.status_code, answer.json()


async def test_g7_with_kafka_down_a_user_is_still_created_and_published_once_it_is_back(
        pipeline: Pipeline, kafka_broker: KafkaBroker) -> None:
    assert (await pipeline.create_user(**ALICE))[0] == 201
    await pipeline.settle()
    await asyncio.to_thread(kafka_broker.stop)  # in a thread: the runtime keeps running meanwhile
    try:
        assert await pipeline.create_user("bob", "bob@example.com") == (
            201, {"id": 2, "username": "bob", "email": "bob@example.com"})
        log = pipeline.runtime.service("user").store
        assert await log.checkpoint(CHECKPOINT) < await log.head()  # committed, not yet on Kafka
        status, body = await health(pipeline)
        assert status == 200 and body["status"] == "degraded" and body["kafka"] == "unhealthy"
        assert body["database"] == "healthy"
    finally:
        # on this thread: an attached broker dies with the thread that started it, and the session's other
        # tests still need it (the runtime only pauses for the start)
        kafka_broker.start(attached=True)
    deadline = time.monotonic() + WAIT
    while len(await pipeline.mails()) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await pipeline.settle()
    assert sorted(key or b"" for key, _ in await pipeline.user_records()) == [b"user-1", b"user-2"]
    assert sorted(m["To"][0]["Address"] for m in await pipeline.mails()) == ["alice@example.com", "bob@example.com"]
    assert (await pipeline.request("GET", "/analytics/users"))[1]["total"] == 2
    assert (await health(pipeline))[1]["kafka"] == "healthy"


async def test_g5_a_database_that_refuses_connections_is_reported_unhealthy(
        pipeline: Pipeline, postgres_server: PostgresServer) -> None:
    assert pipeline.distributed is not None
    admin_dsn = postgres_server.dsn
    database = f"{make_url(pipeline.distributed.dsn).database}__user"
    admin = await asyncpg.connect(admin_dsn)
    try:
        # "Stop Postgres" for this service alone: the session's server is shared by other tests
        await admin.execute(f"ALTER DATABASE {quote_identifier(database)} ALLOW_CONNECTIONS false")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database)
        status, body = await health(pipeline)
        assert status == 503 and body["status"] == "unhealthy" and body["database"] == "unhealthy"
        assert body["services"] == {"user": "unhealthy", "processing": "healthy", "notification": "healthy",
                                    "analytics": "healthy"}
    finally:
        await admin.execute(f"ALTER DATABASE {quote_identifier(database)} ALLOW_CONNECTIONS true")
        await admin.close()
    deadline = time.monotonic() + WAIT  # the pools reconnect on their next use
    while (await health(pipeline))[0] != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    status, body = await health(pipeline)
    assert status == 200 and body["database"] == "healthy"
    assert (await pipeline.create_user(**ALICE))[0] == 201
