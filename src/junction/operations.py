"""Where a system's data is, for the operator commands (``junction status``, ``events tail``, ``dlq``, ``logs``).

A data directory where ``junction up`` runs describes itself: its supervisor's state file holds the
settings its processes were given (the PostgreSQL and Kafka addresses), its servers and its
processes. Otherwise the configuration decides: ``database_url`` means PostgreSQL, else the SQLite
files of the data directory. The commands read the stores (and Kafka's committed offsets) directly,
so they work whether or not the services run, and they never create a store or a database.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from junction.clock import Clock
from junction.config import Config
from junction.errors import StoreError
from junction.queues import is_queued
from junction.runtime import System
from junction.sqlite import SqliteStore
from junction.store import Store
from junction.supervisor import running_state
from junction.topology import Topology
from junction.up import STATE_FILE


def _hide_password(dsn: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(dsn).render_as_string(hide_password=True)


@dataclass
class Deployment:
    """A system's data and, while ``junction up`` runs it, its processes and servers."""

    system: System
    data_dir: Path
    config: Config
    supervisor: dict[str, Any] | None = None  # the live `junction up` state, if any

    @property
    def topology(self) -> Topology:
        """The stores and transport the system's processes use."""
        return Topology.from_config(self.config)

    @property
    def kind(self) -> str:
        """One phrase for headers: how the system is deployed."""
        if self.supervisor is not None:
            return "distributed (junction up)" if self.supervisor.get("distributed") else \
                "a process per service on SQLite files (junction up)"
        return "PostgreSQL" if self.config.database_url else "embedded (SQLite files)"

    @property
    def database(self) -> str:
        """Where the stores are: the PostgreSQL server (without a password) or the data directory."""
        url = self.config.database_url
        return _hide_password(url) if url else str(self.data_dir)

    @property
    def processes(self) -> list[dict[str, Any]]:
        """The supervised processes' states (empty unless `junction up` runs)."""
        return list((self.supervisor or {}).get("children", []))

    @property
    def servers(self) -> dict[str, dict[str, str]]:
        """The servers `junction up` started: name → address and log file."""
        return dict((self.supervisor or {}).get("servers", {}))

    @property
    def was_distributed(self) -> bool:
        """True when `junction up --distributed` ran here (its Kafka broker lives in the data directory; the
        PostgreSQL cluster too, or under /var/tmp when the postgres user cannot reach it)."""
        return (self.data_dir / "kafka").is_dir() or (self.data_dir / "pg").is_dir()

    def check(self) -> None:
        """Raise ``StoreError`` with the way out when there is no data to look at."""
        if self.config.database_url:
            return
        if any((self.data_dir / f"{s.name}.db").exists() for s in self.system.services):
            return
        name = self.system.name
        if self.was_distributed:
            raise StoreError(f"{name} ran distributed from {self.data_dir} and is stopped; its data is in the "
                             f"PostgreSQL cluster `junction up` started: start it again with `junction up {name} "
                             f"--distributed` (or point JUNCTION_DATABASE_URL at a running server)")
        raise StoreError(f"no data for {name} in {self.data_dir} (start it with `junction run {name}` first)")


def locate(system: System, data_dir: Path, config: Config, require_data: bool = True) -> Deployment:
    """The deployment of ``system`` whose files are in ``data_dir``; ``StoreError`` when it has no data
    (unless ``require_data`` is False)."""
    state = running_state(data_dir / STATE_FILE)
    if state is not None:  # see the stores as the running processes do
        config = config.with_env({str(k): str(v) for k, v in state.get("settings", {}).items()})
    deployment = Deployment(system, data_dir, config, state)
    if require_data:
        deployment.check()
    return deployment


@contextlib.asynccontextmanager
async def open_stores(deployment: Deployment, names: list[str] | None = None) -> AsyncIterator[dict[str, Store]]:
    """The existing stores of the services ``names`` (default: all), opened, closed on exit.

    A service whose SQLite file or PostgreSQL database does not exist is left out (nothing is created).
    """
    factory = deployment.topology.stores(deployment.system, create=False)
    opened: dict[str, Store] = {}
    try:
        for service in deployment.system.services:
            if names is not None and service.name not in names:
                continue
            store: Store
            if factory is None:
                path = deployment.data_dir / f"{service.name}.db"
                if not path.exists():
                    continue
                store = SqliteStore(service.name, path)
            else:
                store = factory(service, deployment.data_dir)
            if await _open(store, deployment):
                opened[service.name] = store
        yield opened
    finally:
        for store in opened.values():
            with contextlib.suppress(Exception):
                await store.close()


async def _open(store: Store, deployment: Deployment) -> bool:
    """Open ``store``; False when its PostgreSQL database does not exist (the service never ran there)."""
    try:
        await store.open()
    except OSError as error:
        raise StoreError(f"cannot reach PostgreSQL at {deployment.database}: {error}") from None
    except Exception as error:
        import asyncpg

        if isinstance(error, asyncpg.InvalidCatalogNameError):
            return False
        raise
    return True


async def status(deployment: Deployment, clock: Clock) -> dict[str, Any]:
    """Per service: log head, relay lag, parked messages, next timer, and each subscription's position and lag.

    Lag is Kafka consumer-group lag (end offsets minus committed offsets) when the system uses Kafka,
    and the source log's head minus the subscription's checkpoint otherwise. Relay lag is the events
    a service committed that its outbox relay has not yet put on Kafka. A queue subscription
    (``junction.queues``) is ``via rabbitmq`` when the system runs distributed with the broker (its lag is the
    messages ready in its queue, and ``dead_lettered`` those in its dead-letter queue), else ``via queue``
    (the embedded queue: the source log's head minus its checkpoint).
    """
    system = deployment.system
    kafka = deployment.topology.kafka(system)
    rabbit = deployment.topology.rabbit(system)
    async with open_stores(deployment) as stores:
        if not stores:
            raise StoreError(f"no data for {system.name} on {deployment.database} "
                             f"(start it with `junction up {system.name} --distributed` first)")
        groups: dict[str, Any] = {}
        kafka_error = None
        if kafka is not None:
            from aiokafka.errors import KafkaError

            from junction.kafka.exports import subscription_topic
            from junction.kafka.lag import group_lags

            pairs = [(kafka.group(s.name, sub.name), subscription_topic(kafka, system, s.name, sub))
                     for s in system.services if s.name in stores for sub in s.subscriptions.values()
                     if not is_queued(sub)]  # a queue subscription has no consumer group
            try:
                groups = {lag.group: lag for lag in await group_lags(kafka, pairs)}
            except (KafkaError, OSError, TimeoutError, RuntimeError) as error:  # shown, not fatal: stores still tell
                kafka_error = f"Kafka at {kafka.bootstrap} did not answer: {error or type(error).__name__}"
        queues, rabbit_error = await _queue_depths(system, rabbit, list(stores))
        services: dict[str, Any] = {}
        for name, store in stores.items():
            head = await store.head()
            consumers: dict[str, Any] = {}
            for sub in system.service(name).subscriptions.values():
                if is_queued(sub) and rabbit is not None:
                    queue = rabbit.queue(name, sub.name)
                    consumers[sub.name] = {"source": sub.source, "via": "rabbitmq", "queue": queue, "position": None,
                                           "lag": queues.get(queue),
                                           "dead_lettered": queues.get(rabbit.dead_letter_queue(name, sub.name))}
                elif kafka is not None and not is_queued(sub):
                    group = kafka.group(name, sub.name)
                    measured = groups.get(group)
                    consumers[sub.name] = {"source": sub.source, "via": "kafka", "group": group,
                                           "position": measured.position if measured else None,
                                           "lag": measured.lag if measured else None}
                else:
                    position = await store.checkpoint(sub.name)
                    source = stores.get(sub.source)
                    consumers[sub.name] = {"source": sub.source, "via": "queue" if is_queued(sub) else "log",
                                           "position": position,
                                           "lag": max(0, await source.head() - position) if source else None}
            services[name] = {"head": head, "relay_lag": await _relay_lag(store, head) if kafka else None,
                              "parked": len(await store.parked()), "next_timer": await store.next_due(),
                              "consumers": consumers}
    return {"system": system.name, "time": clock.now().isoformat(), "topology": deployment.kind,
            "database": deployment.database, "kafka": kafka.bootstrap if kafka else None, "kafka_error": kafka_error,
            "rabbitmq": rabbit.url if rabbit else None, "rabbitmq_error": rabbit_error,
            "supervisor": (deployment.supervisor or {}).get("pid"), "servers": deployment.servers,
            "processes": deployment.processes, "services": services}


async def _queue_depths(system: System, rabbit: Any, services: list[str]) -> tuple[dict[str, int | None], str | None]:
    """Messages in the RabbitMQ queues (and their dead-letter queues) of the queue subscriptions of ``services``;
    an error to show instead when the broker does not answer."""
    if rabbit is None:
        return {}, None
    from junction.rabbitmq.queues import depths

    names = [name for s in system.services if s.name in services for sub in s.subscriptions.values()
             if is_queued(sub) for name in (rabbit.queue(s.name, sub.name), rabbit.dead_letter_queue(s.name, sub.name))]
    if not names:
        return {}, None
    try:
        return await depths(rabbit, names), None
    except Exception as error:  # unreachable, refused, timed out: shown, not fatal (the stores still tell)
        where = urlsplit(rabbit.url)  # host and port only: the URL carries the password
        return {}, f"RabbitMQ at {where.hostname}:{where.port} did not answer: {error or type(error).__name__}"


async def _relay_lag(store: Store, head: int) -> int:
    from junction.kafka.relay import CHECKPOINT

    return max(0, head - await store.checkpoint(CHECKPOINT))


def log_files(deployment: Deployment) -> dict[str, Path]:
    """Every log of the deployment by name: its processes' (``<data>/logs/<name>.log``), then its servers'."""
    logs = {path.stem: path for path in sorted((deployment.data_dir / "logs").glob("*.log"))}
    servers = {name: Path(server["log"]) for name, server in deployment.servers.items()}
    if "postgres" not in servers and deployment.was_distributed:  # stopped: where `up` keeps them
        from junction.infra.postgres import LocalPostgres

        servers["postgres"] = LocalPostgres(home=deployment.data_dir / "pg").log_file
    if "kafka" not in servers and (deployment.data_dir / "kafka" / "broker.log").exists():
        servers["kafka"] = deployment.data_dir / "kafka" / "broker.log"
    for name, path in servers.items():
        if path.is_dir():  # a server that keeps several logs (RabbitMQ): each of them
            logs |= {f"{name}/{log.stem}": log for log in sorted(path.glob("*.log"))}
        elif path.exists():
            logs[name] = path
    return logs
