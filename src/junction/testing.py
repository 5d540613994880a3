"""Running a system inside a test, on either topology, as ``junction.topology`` assembles it for real.

``embedded``: SQLite stores in the test's directory, consumers reading the source service's log.
``distributed``: PostgreSQL stores in fresh databases of the session's server, Kafka topics of the
session's broker fed by each service's outbox relay (exports included), all in this process. Topic
and group names carry a prefix unique to the test, so no test sees another's events or offsets.
Queue subscriptions (``junction.queues``) are wired as ``junction.topology`` wires them: the embedded queue,
or, distributed, RabbitMQ queues of the session's node (``rabbitmq_broker``) fed by the services' relays,
when the system declares ``brokers={"rabbitmq"}`` (exchange and queue names also prefixed by the test).

    @pytest.fixture(params=TOPOLOGIES)
    async def shop(request, tmp_path):
        async with topology(request, build()) as distributed, running(build(), tmp_path, distributed) as runtime:
            yield runtime

gRPC servers listen on free ports (``free_ports``), never on a system's fixed ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from junction.clock import Clock
from junction.grpc import GrpcConfig
from junction.kafka import KafkaConfig, KafkaSource, kafka_sources, start_relays
from junction.kafka.follow import kafka_followers
from junction.postgres import postgres_stores
from junction.queues import QueueSources, has_queues, start_queue_relays
from junction.runtime import Runtime, SourceFactory, StoreFactory, System
from junction.sources import FollowerFactory

if TYPE_CHECKING:
    from junction.rabbitmq import RabbitConfig

TOPOLOGIES = ["embedded", "distributed"]  # the params of a fixture that runs its tests on both


@dataclass(frozen=True)
class Distributed:
    """The distributed building blocks of one test: service ``s`` keeps its state in database
    ``<database>__<s>`` of ``dsn``'s server, and exchanges events over ``kafka``'s topics (and the messages of
    queue subscriptions over ``rabbit``'s queues, for a system with ``brokers={"rabbitmq"}``)."""

    dsn: str  # a fresh database of this test (its name is the prefix of the services' databases)
    kafka: KafkaConfig
    rabbit: RabbitConfig | None = None

    def stores(self) -> StoreFactory:
        """The runtime's store factory."""
        return postgres_stores(self.dsn, prefix=f"{make_url(self.dsn).database}__")

    def sources(self, system: System | None = None) -> SourceFactory:
        """The runtime's source factory (subscriptions to exported events read the exported topic)."""
        return kafka_sources(self.kafka, system=system)

    def followers(self) -> FollowerFactory:
        """The runtime's follower factory (live feeds read the topics)."""
        return kafka_followers(self.kafka)


def kafka_names(system: str, bootstrap: str) -> KafkaConfig:
    """Kafka names of one test: every topic and consumer group prefixed by a fresh run id."""
    run = f"t{uuid.uuid4().hex[:8]}"
    return KafkaConfig(system, bootstrap, topic_template=run + ".{system}.{service}",
                       group_template=run + ".{service}.{subscription}", export_template=run + ".{topic}")


def rabbit_names(system: str, url: str) -> RabbitConfig:
    """RabbitMQ names of one test: every exchange and queue prefixed by a fresh run id."""
    from junction.rabbitmq import RabbitConfig  # only systems with queues need aio-pika

    run = f"t{uuid.uuid4().hex[:8]}"
    return RabbitConfig(system, url, exchange_template=run + ".{system}.{service}",
                        queue_template=run + ".{system}.{service}.{subscription}", prefetch=100, ack_every=20)


@contextlib.asynccontextmanager
async def topology(request: Any, system: str | System) -> AsyncIterator[Distributed | None]:
    """The topology a fixture parametrised by ``TOPOLOGIES`` runs on: None (embedded), or a fresh database
    of the session's PostgreSQL server (``postgres_server``) with test-prefixed Kafka names on the
    session's broker (``kafka_broker``), dropped afterwards, and test-prefixed RabbitMQ names on the session's
    node (``rabbitmq_broker``) when ``system`` (not just its name) declares ``brokers={"rabbitmq"}``.
    ``request`` is the fixture's pytest request."""
    if request.param == "embedded":
        yield None
        return
    name = system if isinstance(system, str) else system.name
    rabbit = None
    if not isinstance(system, str) and "rabbitmq" in system.brokers:
        rabbit = rabbit_names(name, request.getfixturevalue("rabbitmq_broker").url)
    server = request.getfixturevalue("postgres_server")
    broker = request.getfixturevalue("kafka_broker")
    async with server.database() as dsn:
        yield Distributed(dsn, kafka_names(name, broker.bootstrap), rabbit)


def free_ports(system: System) -> GrpcConfig:
    """gRPC on free ports for every service that has servicers (tests run beside real systems and each other)."""
    return GrpcConfig(ports={s.name: 0 for s in system.services if s.servicers})


@contextlib.asynccontextmanager
async def running(system: System, data_dir: Path, distributed: Distributed | None = None,
                  clock: Clock | None = None, **options: Any) -> AsyncIterator[Runtime]:
    """``system`` started on the topology (relays running and consumer groups joined when distributed),
    stopped afterwards; ``options`` go to ``Runtime``. Queue subscriptions go on the embedded queue, or on
    ``distributed.rabbit``'s queues."""
    options.setdefault("poll_interval", 0.05)
    options.setdefault("grpc", free_ports(system))
    rabbit = distributed.rabbit if distributed is not None else None
    if distributed is not None:
        if rabbit is None and "rabbitmq" in system.brokers and has_queues(system):
            raise ValueError(f"{system.name} queues over RabbitMQ: pass the System to topology(), not its name")
        options |= {"store_factory": distributed.stores(), "source_factory": distributed.sources(system),
                    "follower_factory": distributed.followers()}
    queues = None
    if has_queues(system):  # as junction.topology does: queue subscriptions by QueueSources, the rest as before
        queues = QueueSources(options.get("source_factory"), rabbit)
        options["source_factory"] = queues
    runtime = Runtime(system, data_dir, clock=clock, **options)
    if queues is not None:
        queues.bind(runtime)
    async with runtime:
        if distributed is not None:
            start_relays(runtime, distributed.kafka)
            if rabbit is not None and queues is not None:
                start_queue_relays(runtime, rabbit)
            await joined(runtime)
        yield runtime


async def joined(runtime: Runtime, timeout: float = 60.0) -> None:
    """Wait until every Kafka source of ``runtime`` has joined its consumer group, so that a test
    (and its teardown) never races the group joins of the start."""
    sources = [worker.source for service in runtime.services.values()
               for worker in service.subscriptions.values() if isinstance(worker.source, KafkaSource)]
    deadline = time.monotonic() + timeout
    while not all(source.joined for source in sources):
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka sources not joined after {timeout} s")
        await asyncio.sleep(0.02)
