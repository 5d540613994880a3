"""One process's part of a system, assembled from configuration: embedded, or distributed.

The same names configure a laptop run (`junction up --distributed` sets them for its children)
and the Kubernetes manifests:

| variable | meaning |
|---|---|
| ``JUNCTION_DATA_DIR`` | where SQLite files, keys and the clock origin live (default ``var/<system>``) |
| ``JUNCTION_DATABASE_URL`` | a PostgreSQL server; service ``s`` of system ``y`` uses database ``y_s`` |
| ``JUNCTION_KAFKA_BOOTSTRAP`` | Kafka brokers: each service relays its log to its topic, consumers read topics |
| ``JUNCTION_<SERVICE>_URL`` | where a service hosted by another process answers (``http://host:port/<service>``) |
| ``JUNCTION_TIME_SCALE``, ``JUNCTION_CLOCK_ORIGIN`` | a shared scaled clock for every process of a demo |

Without ``JUNCTION_DATABASE_URL`` and ``JUNCTION_KAFKA_BOOTSTRAP`` a process uses SQLite files and
reads other services' logs from their files, which is how one process per service runs on one
machine without any server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from junction.clock import Clock, make_clock
from junction.runtime import Runtime, StoreFactory, System


@dataclass(frozen=True)
class Topology:
    """Which store and which transport a process uses."""

    database_url: str | None = None
    kafka_bootstrap: str | None = None

    @classmethod
    def from_env(cls) -> Topology:
        """Read ``JUNCTION_DATABASE_URL`` and ``JUNCTION_KAFKA_BOOTSTRAP``."""
        return cls(os.environ.get("JUNCTION_DATABASE_URL") or None, os.environ.get("JUNCTION_KAFKA_BOOTSTRAP") or None)

    @property
    def distributed(self) -> bool:
        """True when services keep their state in PostgreSQL and exchange events over Kafka."""
        return self.database_url is not None

    def stores(self, system: System) -> StoreFactory | None:
        """The store factory (None: the embedded SQLite default)."""
        if self.database_url is None:
            return None
        from junction.postgres import postgres_stores

        return postgres_stores(self.database_url, prefix=f"{system.name}_")

    def kafka(self, system: System) -> Any:
        """The system's Kafka configuration, when a broker is configured."""
        if self.kafka_bootstrap is None:
            return None
        from junction.kafka import KafkaConfig

        return KafkaConfig.from_env(system.name)

    def runtime(self, system: System, data_dir: Path, clock: Clock, only: list[str] | None,
                edge: bool | None = None) -> Runtime:
        """A runtime for this process (not started)."""
        kafka = self.kafka(system)
        sources = None
        if kafka is not None:
            from junction.kafka import kafka_sources

            sources = kafka_sources(kafka)
        return Runtime(system, data_dir, clock=clock, only=only, store_factory=self.stores(system),
                       source_factory=sources, edge=edge)

    async def start(self, runtime: Runtime) -> None:
        """Start the runtime and, with Kafka, the outbox relay of every service it hosts."""
        await runtime.start()
        kafka = self.kafka(runtime.system)
        if kafka is not None:
            from junction.kafka import start_relays

            start_relays(runtime, kafka)


def clock_from_env(time_scale: float | None = None) -> Clock:
    """The platform clock shared by the processes of one run (``JUNCTION_TIME_SCALE``/``_CLOCK_ORIGIN``)."""
    scale = time_scale if time_scale is not None else float(os.environ.get("JUNCTION_TIME_SCALE", "1"))
    origin = os.environ.get("JUNCTION_CLOCK_ORIGIN")
    return make_clock(scale, float(origin) if origin else None)
