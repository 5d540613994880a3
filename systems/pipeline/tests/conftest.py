"""Fixtures of the pipeline's tests: the system behind its gateway on a virtual clock, with an API key, its
mails in a real SMTP sink that the test starts (``JUNCTION_SMTP_PORT`` points the notification service's
sender at it).

``pipeline`` runs embedded here; ``acceptance/conftest.py`` runs it on both topologies.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from junction.clock import VirtualClock
from junction.mail import MailSink
from junction.mail.testing import received
from junction.runtime import Runtime
from junction.testing import Distributed, running
from pipeline.contracts.events import USER_EVENTS
from pipeline.keys import create_key
from pipeline.system import build

ALICE = {"username": "alice", "email": "alice@example.com"}


class Pipeline:
    """A running pipeline driven through its gateway, as a client with an API key drives it."""

    def __init__(self, runtime: Runtime, clock: VirtualClock, sink: MailSink, key: str,
                 distributed: Distributed | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sink = sink
        self.key = key
        self.distributed = distributed
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://pipeline.test",
                                      headers={"x-api-key": key})

    async def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One call through the gateway; its status and decoded JSON body (text when it is not JSON)."""
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        answer = await self.http.request(method, path, content=content,
                                         headers={"content-type": "application/json", **(headers or {})})
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, answer.text

    async def create_user(self, username: str, email: str) -> tuple[int, Any]:
        """POST /users."""
        return await self.request("POST", "/users", {"username": username, "email": email})

    async def ingest(self, readings: list[dict[str, Any]] | None = None, raw: bytes | None = None,
                     ndjson: bool = False) -> tuple[int, Any]:
        """POST /ingest: a JSON array of ``readings``, or their NDJSON, or ``raw`` bytes."""
        if raw is None:
            raw = ("\n".join(json.dumps(r) for r in readings or []) if ndjson else json.dumps(readings)).encode()
        kind = "application/x-ndjson" if ndjson else "application/json"
        return await self.request("POST", "/ingest", raw=raw, headers={"content-type": kind})

    async def mails(self) -> list[dict[str, Any]]:
        """The sink's mails, each as its Mailpit-compatible API gives it (its text too), newest first."""
        return await received(self.sink)

    async def user_records(self) -> list[tuple[bytes | None, bytes | None]]:
        """Every record on topic ``user-events`` (distributed): key and value."""
        assert self.distributed is not None
        topic = self.distributed.kafka.export_topic(USER_EVENTS)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.distributed.kafka.bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=2000)
            while more := await consumer.getmany(timeout_ms=300):
                batches |= more
            return [(r.key, r.value) for records in batches.values() for r in records]
        finally:
            await consumer.stop()

    async def settle(self) -> None:
        """Let every consumer, relay and the mail sender catch up."""
        await self.runtime.settle()


@contextlib.asynccontextmanager
async def open_pipeline(data_dir: Path, sink: MailSink, distributed: Distributed | None = None
                        ) -> AsyncIterator[Pipeline]:
    """The pipeline on the topology, with an API key made on its data directory, stopped afterwards."""
    clock = VirtualClock()
    key = create_key(data_dir)
    async with running(build(), data_dir, distributed, clock=clock) as runtime:
        pipeline = Pipeline(runtime, clock, sink, key, distributed)
        try:
            yield pipeline
        finally:
            await pipeline.http.aclose()


@pytest.fixture
async def pipeline(tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Pipeline]:
    """The pipeline, embedded."""
    async with open_pipeline(tmp_path / "data", mail_sink) as running_pipeline:
        yield running_pipeline
