"""``junction.testing`` wires queue subscriptions as ``junction.topology`` does: the embedded queue, or RabbitMQ
queues with names of the test's own when a distributed system declares ``brokers={"rabbitmq"}``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from junction.clock import VirtualClock
from junction.queues import QueueSource
from junction.runtime import System
from junction.testing import Distributed, kafka_names, running, topology
from tests.unit.test_queues import toy


@dataclass
class FakeServers:
    """The session fixtures ``topology`` asks for, without servers: it only reads their addresses."""

    bootstrap: str = "127.0.0.1:1"
    url: str = "amqp://guest:guest@127.0.0.1:2/"

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        yield "postgresql://u@127.0.0.1:3/t_fresh"


@dataclass
class FakeRequest:
    """A fixture's pytest request, parametrised by ``TOPOLOGIES``."""

    param: str
    asked: list[str]

    def getfixturevalue(self, name: str) -> Any:
        self.asked.append(name)
        return FakeServers()


def queued_system() -> System:
    system, _ = toy()
    return System("queues", system.services, brokers=frozenset({"rabbitmq"}))


async def test_embedded_queue_subscriptions_get_the_embedded_queue(tmp_path: Path) -> None:
    system, handled = toy()
    clock = VirtualClock()
    async with running(system, tmp_path, clock=clock) as runtime:
        worker = runtime.service("receiver").subscriptions["queue:sender"]
        assert isinstance(worker.source, QueueSource)
        assert not isinstance(runtime.service("feed").subscriptions["handlers:sender"].source, QueueSource)
        await runtime.client("sender").post("/notices/ana")
        await clock.advance(timedelta(seconds=1))
        await runtime.settle()
        assert sorted(handled) == ["ana", "feed:ana"]


async def test_a_distributed_system_with_rabbitmq_gets_queue_names_of_the_test() -> None:
    request = FakeRequest("distributed", [])
    async with topology(request, queued_system()) as distributed:
        assert distributed is not None and distributed.rabbit is not None
        assert distributed.rabbit.url == FakeServers.url
        assert re.fullmatch(r"t[0-9a-f]{8}\.queues\.sender", distributed.rabbit.exchange("sender"))
        assert re.fullmatch(r"t[0-9a-f]{8}\.queues\.receiver\.queue:sender",
                            distributed.rabbit.queue("receiver", "queue:sender"))
    assert "rabbitmq_broker" in request.asked
    for system in ("queues", toy()[0]):  # a name, or a system without the broker: Kafka only
        request = FakeRequest("distributed", [])
        async with topology(request, system) as distributed:
            assert distributed is not None and distributed.rabbit is None
        assert "rabbitmq_broker" not in request.asked
    async with topology(FakeRequest("embedded", []), queued_system()) as distributed:
        assert distributed is None


async def test_queues_over_rabbitmq_need_its_names(tmp_path: Path) -> None:
    distributed = Distributed("postgresql://u@127.0.0.1:3/t_x", kafka_names("queues", "127.0.0.1:1"))
    with pytest.raises(ValueError, match="pass the System to topology"):
        async with running(queued_system(), tmp_path, distributed):
            pass
