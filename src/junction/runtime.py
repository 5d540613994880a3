"""The runtime: turns service definitions into running services.

Embedded (the default): every service of a system in one asyncio process, each with its own
SQLite file under the data directory; services call each other's HTTP contracts in-process
(``Transport.add_app``) and consume each other's logs directly from the source store. A runtime
can also host a subset of a system's services, which is how one service per process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from junction.clock import Clock, RealClock, VirtualClock
from junction.events import Envelope
from junction.grpc import GrpcConfig, GrpcServers
from junction.http import build_app
from junction.ids import Snowflake
from junction.metrics import exposition
from junction.service import Service, SubscriptionSpec
from junction.sources import Follower, FollowerFactory, LogFollower, LogSource, Source
from junction.sqlite import SqliteStore
from junction.store import Store
from junction.subscriptions import RetryPolicy, SubscriptionWorker
from junction.timers import TimerWorker
from junction.transport import Transport
from junction.uow import UnitOfWork

log = structlog.get_logger()


LOCAL_CALLERS = frozenset({"127.0.0.1", "::1", "localhost"})
OPTIONAL_BROKERS = frozenset({"rabbitmq"})  # what ``System.brokers`` may name


def from_this_machine(request: Request) -> bool:
    """True for loopback callers: operator endpoints (status, rebuild) are not for the public."""
    return request.client is not None and request.client.host in LOCAL_CALLERS


StoreFactory = Callable[[Service, Path], Store]
SourceFactory = Callable[["ServiceRuntime", SubscriptionSpec], Source]  # broker sources (distributed)


def sqlite_store(service: Service, data_dir: Path) -> Store:
    """The embedded store of a service: ``<data_dir>/<service>.db``."""
    return SqliteStore(service.name, data_dir / f"{service.name}.db", service.metadata)


@dataclass(frozen=True)
class Companion:
    """A development server a system needs beside its services, such as the SMTP sink its mails go to."""

    name: str
    serve: Callable[[Path], Awaitable[None]]  # serve(data_dir) until cancelled, in the caller's event loop
    command: Callable[[Path], list[str]]  # the `junction` arguments that run it as a process, given the data dir


@dataclass
class System:
    """A reference system: its services and how it is served."""

    name: str
    services: list[Service]
    port: int = 8000
    extra_routes: Callable[[Runtime], list[BaseRoute]] | None = None
    # `junction bench <name>` scenarios of this system: async (console, quick) -> JSON-ready figures
    benchmarks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    commands: Any = None  # an optional Typer app with system-specific commands, run as `junction <name> ...`
    # The system's public edge (e.g. a GraphQL gateway). When set, its routes are served and the
    # services' internal HTTP APIs are no longer mounted under /<service> on the public app: they
    # stay reachable in-process only (the transport, ``Runtime.client``).
    gateway: Callable[[Runtime], list[BaseRoute]] | None = None
    description: str = ""
    # Brokers the distributed topology needs besides PostgreSQL and Kafka, e.g. frozenset({"rabbitmq"})
    # for queue semantics: `junction up --distributed` starts them and tells every process where they are.
    brokers: frozenset[str] = frozenset()
    # Development servers beside the services (e.g. the mail sink): `junction run` serves them in its process,
    # `junction up` as processes of their own. Tests start their own instead.
    companions: list[Companion] = field(default_factory=list)
    # Every process's GET /health, for a contract that gives it a shape of its own (dependencies and all);
    # the platform's ``{"status": "ok", "time": ...}`` otherwise. Given the runtime, it returns the endpoint.
    health: Callable[[Runtime], Callable[[Request], Awaitable[Response]]] | None = None

    def __post_init__(self) -> None:
        checks: list[tuple[str, list[object]]] = [
            ("service name", [s.name for s in self.services]),
            ("Snowflake worker", [s.worker for s in self.services]),
            ("projection name", [p for s in self.services for p in s.projections]),
        ]
        for what, values in checks:
            duplicates = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"{self.name}: {what} used twice: {', '.join(duplicates)}")
        if unknown := sorted(set(self.brokers) - OPTIONAL_BROKERS):
            known = ", ".join(sorted(OPTIONAL_BROKERS))
            raise ValueError(f"{self.name}: unknown broker {', '.join(unknown)} (known: {known})")

    def service(self, name: str) -> Service:
        """One service by name."""
        for service in self.services:
            if service.name == name:
                return service
        raise LookupError(f"{self.name} has no service {name!r}")

    def projections(self) -> dict[str, Service]:
        """Projection name → owning service."""
        return {p: s for s in self.services for p in s.projections}


@dataclass
class ServiceRuntime:
    """One running service: its store, ids, app and workers."""

    spec: Service
    store: Store
    ids: Snowflake
    clock: Clock
    transport: Transport
    app: Starlette | None = None
    subscriptions: dict[str, SubscriptionWorker] = field(default_factory=dict)
    timers: TimerWorker | None = None

    def uow(self, message: Envelope | None = None) -> UnitOfWork:
        """A fresh unit of work on this service's store."""
        return UnitOfWork(self.store, self.clock, self.ids, self.transport, message)


class Runtime:
    """Runs (some of) a system's services."""

    def __init__(self, system: System, data_dir: Path | str, clock: Clock | None = None,
                 only: list[str] | None = None, retry: RetryPolicy | None = None,
                 poll_interval: float = 0.25, store_factory: StoreFactory | None = None,
                 source_factory: SourceFactory | None = None, follower_factory: FollowerFactory | None = None,
                 edge: bool | None = None,
                 peers: dict[str, str] | None = None, grpc: GrpcConfig | None = None) -> None:
        self.system = system
        self.peers = peers or {}  # service -> URL, for services another process hosts (``junction.topology``)
        self.data_dir = Path(data_dir)
        # Serve the system's gateway here (default: when it has one). A process that hosts one service
        # of a distributed system serves that service's internal API under /<service> instead.
        self.edge = system.gateway is not None if edge is None else edge and system.gateway is not None
        self.clock = clock or RealClock()
        self.retry = retry or RetryPolicy()
        self.poll_interval = poll_interval
        self.transport = Transport()
        hosted = [s.name for s in system.services] if only is None else only
        self.store_factory = store_factory or sqlite_store
        self.source_factory = source_factory
        self.follower_factory = follower_factory
        self.services: dict[str, ServiceRuntime] = {}
        for spec in system.services:
            if spec.name in hosted:
                store = self.store_factory(spec, self.data_dir)
                self.services[spec.name] = ServiceRuntime(spec, store, Snowflake(spec.worker), self.clock,
                                                          self.transport)
        # the hosted services' gRPC servicers, and where this process reaches other processes' ones
        self.grpc = GrpcServers([(s.spec, s.uow) for s in self.services.values()], grpc or GrpcConfig(),
                                self.transport.channels)
        self._sources: dict[str, Store] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.quiet_checks: list[Callable[[], Awaitable[bool]]] = []  # more work in flight to wait for (outbox relays)
        self.started_at = time.time()
        self.app = self._build_app()
        if isinstance(self.clock, VirtualClock):
            self.clock.settle_hooks.append(self.settle)

    # -- life cycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (create or migrate) every hosted store, without starting any worker."""
        for service in self.services.values():
            await service.store.open()

    async def start(self) -> None:
        """Open stores, serve the apps, start timers and consumers, run start hooks."""
        await self.open()
        await self.grpc.start()
        for service in self.services.values():
            for spec in service.spec.subscriptions.values():
                await self._start_worker(service, spec)
            service.timers = TimerWorker(service.store, self.clock, service.spec.timers, service.uow)
            self._spawn(f"{service.spec.name}/timers", service.timers.run())
            for task in service.spec.background_tasks.values():  # ``Service.background``
                self._spawn(f"{service.spec.name}/{task.name}", task.run(service))
        for service in self.services.values():
            for hook in service.spec.on_start:
                await hook(service)

    async def _start_worker(self, service: ServiceRuntime, spec: SubscriptionSpec) -> SubscriptionWorker:
        if self.source_factory is not None:
            source = self.source_factory(service, spec)
        else:
            source = LogSource(await self.source(spec.source), service.store, spec.name)
        worker = SubscriptionWorker(spec, service.store, source, service.uow, self.retry,
                                    poll_interval=self.poll_interval)
        service.subscriptions[spec.name] = worker
        self._spawn(f"{service.spec.name}/{spec.name}", worker.run())
        return worker

    def _detach_clock(self) -> None:
        if isinstance(self.clock, VirtualClock) and self.settle in self.clock.settle_hooks:
            self.clock.settle_hooks.remove(self.settle)

    async def stop(self) -> None:
        """Stop serving gRPC, stop workers (checkpoints saved) and close stores."""
        self._detach_clock()
        await self.grpc.stop()
        await self._cancel(list(self._tasks))
        for service in self.services.values():
            for worker in service.subscriptions.values():
                with contextlib.suppress(Exception):
                    await worker.flush()
                with contextlib.suppress(Exception):
                    await worker.source.close()
        await self.transport.close()
        for store in {*(s.store for s in self.services.values()), *self._sources.values()}:
            await store.close()

    async def crash(self) -> None:
        """Stop abruptly, as a killed process would: no checkpoint is saved."""
        self._detach_clock()
        await self.grpc.stop(None)
        await self._cancel(list(self._tasks))
        for service in self.services.values():
            for worker in service.subscriptions.values():
                with contextlib.suppress(Exception):
                    await worker.source.close()  # drops broker connections; saves nothing
        await self.transport.close()
        for store in {*(s.store for s in self.services.values()), *self._sources.values()}:
            await store.close()

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def spawn(self, name: str, work: Any) -> None:
        """Run a background task for the runtime's lifetime (cancelled by stop); its death is logged."""
        self._spawn(name, work)

    def _spawn(self, name: str, work: Any) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(self._on_done)
        self._tasks[name] = task

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("worker died", worker=task.get_name(), error=repr(task.exception()))

    async def _cancel(self, names: list[str]) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            if not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def source(self, name: str) -> Store:
        """The log of service ``name``: its store when hosted here, else its SQLite file."""
        if name in self.services:
            return self.services[name].store
        if name not in self._sources:
            store = self.store_factory(self.system.service(name), self.data_dir)
            await store.open()
            self._sources[name] = store
        return self._sources[name]

    async def follower(self, name: str) -> Follower:
        """A started follower of service ``name``'s events from now on (for live views): its topic
        when the runtime is distributed, else its log."""
        follower = (self.follower_factory(name) if self.follower_factory is not None
                    else LogFollower(await self.source(name)))
        await follower.start()
        return follower

    async def pause_consumers(self, service: str, source: str | None = None) -> None:
        """Stop a service's consumers (of one source, or all) until the runtime restarts: a lag made long,
        for fault tests."""
        spec = self.services[service].spec
        names = [n for n, s in spec.subscriptions.items() if source is None or s.source == source]
        await self._cancel([f"{service}/{n}" for n in names])
        for name in names:
            self.services[service].subscriptions.pop(name, None)

    def service(self, name: str) -> ServiceRuntime:
        """A hosted service by name."""
        return self.services[name]

    def client(self, name: str) -> Any:
        """The in-process HTTP client of a service (tests and tools)."""
        return self.transport.client(name).http

    # -- waiting for quiet -------------------------------------------------------------------------
    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every consumer has caught up with its source and no timer is due."""
        deadline = time.monotonic() + timeout
        while True:
            for name, task in self._tasks.items():
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise RuntimeError(f"worker {name} died: {task.exception()!r}")
            if await self._quiet():
                await asyncio.sleep(0)
                if await self._quiet():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the system did not settle")
            await asyncio.sleep(0.002)

    async def _quiet(self) -> bool:
        if self.clock._busy:
            return False
        now = self.clock.timestamp()
        for service in self.services.values():
            next_due = await service.store.next_due()
            if next_due is not None and next_due <= now:
                return False
            for worker in service.subscriptions.values():
                if await worker.source.lag() > 0 or not worker.caught_up.is_set():
                    return False
                if any(p.retry_requested for p in await service.store.parked(worker.name)):
                    return False
            for background in service.spec.background_tasks.values():
                if background.idle is not None and not await background.idle(service):
                    return False
        for check in self.quiet_checks:
            if not await check():
                return False
        return True

    # -- projections -----------------------------------------------------------------------------
    async def rebuild(self, projection: str, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild a read model online: stop its consumers, empty it, replay from the first event."""
        owner = self.system.projections().get(projection)
        if owner is None or owner.name not in self.services:
            raise LookupError(f"unknown projection {projection!r}")
        service = self.services[owner.name]
        spec = owner.projections[projection]
        names = [n for n, s in owner.subscriptions.items() if s.projection == projection]
        await self._cancel([f"{owner.name}/{n}" for n in names])
        await service.store.truncate([t.name for t in spec.tables])
        total = 0
        for name in names:
            stopped = service.subscriptions.get(name)
            if stopped is not None:
                total += await stopped.source.rewind()
            else:  # not running (an offline rebuild): the whole source log is to be replayed
                await service.store.reset_checkpoint(name)
                total += await (await self.source(owner.subscriptions[name].source)).head()
        workers = [await self._start_worker(service, owner.subscriptions[name]) for name in names]
        while True:
            done = sum(w.position for w in workers)
            if progress:
                progress(min(done, total), total)
            if all(w.caught_up.is_set() and w.position >= 0 for w in workers) and done >= total:
                return total
            await asyncio.sleep(0.05)

    # -- the HTTP face -----------------------------------------------------------------------------
    def _build_app(self) -> Starlette:
        mounts: list[BaseRoute] = []
        for service in self.services.values():
            service.app = build_app(service.spec.routes, service.uow, errors=service.spec.errors)
            self.transport.add_app(service.spec.name, service.app)
            if not self.edge:
                mounts.append(Mount(f"/{service.spec.name}", app=service.app))
        for name, url in self.peers.items():  # services hosted by other processes
            if name not in self.services:
                self.transport.add_url(name, url)

        async def health(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "time": self.clock.now().isoformat(),
                                 "system": self.system.name, "services": sorted(self.services)})

        async def status(request: Request) -> Response:
            if not from_this_machine(request):
                return JSONResponse({"error": "operator endpoints answer local callers only"}, status_code=403)
            return JSONResponse(await self.status())

        async def metrics(request: Request) -> Response:
            return Response(exposition(await self.status()), media_type=CONTENT_TYPE_LATEST)

        async def rebuild(request: Request) -> Response:
            name = request.path_params["name"]
            if not from_this_machine(request):
                return JSONResponse({"error": "operator endpoints answer local callers only"}, status_code=403)
            if name not in self.system.projections():
                return JSONResponse({"error": f"unknown projection {name!r}"}, status_code=404)
            return StreamingResponse(self._rebuild_progress(name), media_type="application/x-ndjson")

        extra = self.system.extra_routes(self) if self.system.extra_routes else []
        edge = self.system.gateway(self) if self.edge and self.system.gateway else []
        routes: list[BaseRoute] = [
            Route("/health", self.system.health(self) if self.system.health else health),
            Route("/metrics", metrics), Route("/_junction/status", status),
            Route("/_junction/projections/{name}/rebuild", rebuild, methods=["POST"]), *extra, *mounts, *edge,
        ]
        return Starlette(routes=routes)

    async def _rebuild_progress(self, name: str) -> AsyncIterator[bytes]:
        """Run a rebuild, yielding NDJSON progress lines ``{"done": n, "total": m}``."""
        updates: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()

        async def run() -> None:
            try:
                await self.rebuild(name, lambda done, total: updates.put_nowait((done, total)))
            finally:
                updates.put_nowait(None)

        task = asyncio.create_task(run())
        last = None
        while (update := await updates.get()) is not None:
            if update != last:
                last = update
                yield (json.dumps({"done": update[0], "total": update[1]}) + "\n").encode()
        await task
        yield (json.dumps({"finished": True}) + "\n").encode()

    async def status(self) -> dict[str, Any]:
        """Per service: log head, consumers' positions and lag, parked messages, pending timers."""
        services: dict[str, Any] = {}
        for name, service in self.services.items():
            consumers = {}
            for sub_name, worker in service.subscriptions.items():
                consumers[sub_name] = {"source": worker.spec.source, "via": worker.source.via,
                                       "position": worker.position, "lag": await worker.source.lag(),
                                       "handled": worker.handled, "dead_lettered": worker.source.dead_lettered}
            services[name] = {
                "head": await service.store.head(),
                "consumers": consumers,
                "parked": len(await service.store.parked()),
                "timers_fired": service.timers.fired if service.timers else 0,
                "next_timer": await service.store.next_due(),
                "background": {t.name: await t.status(service) for t in service.spec.background_tasks.values()
                               if t.status},
            }
        return {"system": self.system.name, "time": self.clock.now().isoformat(), "services": services}
