"""One process's part of a system, assembled from configuration (``junction.config``): embedded, or distributed.

The same settings configure a laptop run (`junction up --distributed` sets them for its children)
and the Kubernetes manifests: ``database_url`` (``JUNCTION_DATABASE_URL``) puts service ``s`` of
system ``y`` in PostgreSQL database ``y_s``; ``kafka_bootstrap`` makes services relay their logs to
Kafka and consume topics; ``<service>_url`` says where a service hosted by another process answers;
``time_scale`` and ``clock_origin`` give every process of a demo one scaled clock. Without a
database and a broker a process uses SQLite files and reads other services' logs from their files,
which is how one process per service runs on one machine without any server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from junction import config as settings
from junction.clock import Clock, make_clock
from junction.config import Config
from junction.grpc import GrpcConfig
from junction.queues import QueueSources, has_queues, start_queue_relays
from junction.runtime import Runtime, StoreFactory, System


@dataclass(frozen=True)
class Topology:
    """Which store and which transport a process uses."""

    database_url: str | None = None
    kafka_bootstrap: str | None = None
    config: Config = field(default_factory=Config, compare=False, repr=False)  # Kafka names, peers' URLs

    @classmethod
    def from_config(cls, config: Config | None = None) -> Topology:
        """The topology ``config`` (default: this process's configuration) describes."""
        config = config or settings.load()
        return cls(config.database_url, config.kafka_bootstrap, config)

    @property
    def distributed(self) -> bool:
        """True when services keep their state in PostgreSQL and exchange events over Kafka."""
        return self.database_url is not None

    def stores(self, system: System, create: bool = True) -> StoreFactory | None:
        """The store factory (None: the embedded SQLite default); ``create`` makes missing databases."""
        if self.database_url is None:
            return None
        from junction.postgres import postgres_stores

        return postgres_stores(self.database_url, prefix=f"{system.name}_", create=create)

    def kafka(self, system: System) -> Any:
        """The system's Kafka configuration, when a broker is configured."""
        if self.kafka_bootstrap is None:
            return None
        from junction.kafka import KafkaConfig

        return KafkaConfig.from_config(system.name, self.config)

    def runtime(self, system: System, data_dir: Path, clock: Clock, only: list[str] | None,
                edge: bool | None = None) -> Runtime:
        """A runtime for this process (not started)."""
        kafka = self.kafka(system)
        sources = followers = None
        if kafka is not None:
            from junction.kafka import kafka_sources
            from junction.kafka.follow import kafka_followers

            sources, followers = kafka_sources(kafka, system=system), kafka_followers(kafka)
        peers = {s.name: url for s in system.services if (url := self.config.service_url(s.name))}
        queues = None
        if has_queues(system):  # queue subscriptions: RabbitMQ distributed, the embedded queue otherwise
            queues = QueueSources(sources, self.rabbit(system))
        runtime = Runtime(system, data_dir, clock=clock, only=only, store_factory=self.stores(system),
                          source_factory=queues or sources, follower_factory=followers, edge=edge, peers=peers,
                          grpc=GrpcConfig.from_config(system.services, self.config))
        return queues.bind(runtime) if queues is not None else runtime

    def rabbit(self, system: System) -> Any:
        """The system's RabbitMQ configuration, when it runs distributed and declares the broker."""
        if self.kafka_bootstrap is None or "rabbitmq" not in system.brokers:
            return None
        from junction.rabbitmq import RabbitConfig

        return RabbitConfig(system.name, self.config.get("rabbitmq_url"),
                            self.config.get("rabbitmq_exchange_template"), self.config.get("rabbitmq_queue_template"),
                            int(self.config.get("rabbitmq_prefetch")), int(self.config.get("rabbitmq_ack_every")))

    async def start(self, runtime: Runtime) -> None:
        """Start the runtime and, with Kafka, the outbox relay of every service it hosts."""
        await runtime.start()
        kafka = self.kafka(runtime.system)
        if kafka is not None:
            from junction.kafka import start_relays

            start_relays(runtime, kafka)
        rabbit = self.rabbit(runtime.system)
        if rabbit is not None and has_queues(runtime.system):
            start_queue_relays(runtime, rabbit)


def clock_from_config(config: Config | None = None, time_scale: float | None = None) -> Clock:
    """The platform clock shared by the processes of one run (``time_scale`` and ``clock_origin``)."""
    config = config or settings.load()
    origin: float | None = config.get("clock_origin")
    return make_clock(float(config.get("time_scale", time_scale)), origin)
