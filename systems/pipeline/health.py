"""``GET /health`` in the page's shape, with each dependency's status, on every process of the pipeline.

    {"status": "healthy", "timestamp": 1767225600, "database": "healthy", "kafka": "healthy",
     "services": {"user": "healthy", ...}}

``database`` is ``SELECT 1`` on every service's store (the hosted ones directly, the others through their
own ``GET /health``); ``kafka`` is whether the broker accepts a connection (``disabled`` embedded).
``status``: ``healthy``; ``degraded`` (200) while Kafka is down, since requests still commit and their
events wait in the outbox; ``unhealthy`` (503) while a database is down.

``endpoint`` is the system's ``System(health=...)``: every process of the pipeline answers it in place of
the platform's ``{"status": "ok", "time": ...}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import literal, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from junction.config import load as load_config
from junction.kafka import KafkaSource
from junction.runtime import Runtime
from junction.service import Service
from junction.store import Store
from junction.uow import UnitOfWork

HEALTHY, UNHEALTHY, DISABLED, DEGRADED = "healthy", "unhealthy", "disabled", "degraded"
CHECK_TIMEOUT = 2.0  # a dependency that does not answer within this is unhealthy


async def database_status(store: Store) -> str:
    """``healthy`` when ``SELECT 1`` succeeds on the store within the check timeout."""
    try:
        await asyncio.wait_for(store.fetch_one(select(literal(1))), CHECK_TIMEOUT)
    except Exception:
        return UNHEALTHY
    return HEALTHY


async def kafka_status(bootstrap: str | None) -> str:
    """``healthy`` when the first bootstrap broker accepts a connection; ``disabled`` without Kafka."""
    if not bootstrap:
        return DISABLED
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host or "127.0.0.1", int(port)), CHECK_TIMEOUT)
    except (OSError, ValueError, TimeoutError):
        return UNHEALTHY
    writer.close()
    return HEALTHY


def overall(database: str, kafka: str) -> tuple[str, int]:
    """The status and HTTP status the dependencies' states make."""
    if database != HEALTHY:
        return UNHEALTHY, 503
    return (DEGRADED if kafka == UNHEALTHY else HEALTHY), 200


def declare(service: Service) -> None:
    """Give ``service`` its own ``GET /health`` (its store and the configured broker)."""

    @service.route("GET", "/health")
    async def health(uow: UnitOfWork) -> Response:
        database = await database_status(uow.store)
        kafka = await kafka_status(load_config().kafka_bootstrap)
        status, code = overall(database, kafka)
        return JSONResponse({"status": status, "timestamp": int(uow.clock.timestamp()), "database": database,
                             "kafka": kafka, "service": service.name}, status_code=code)


def bootstrap_of(runtime: Runtime) -> str | None:
    """The broker this process uses: the configured one, else that of a hosted Kafka consumer (tests)."""
    configured: str | None = load_config().kafka_bootstrap
    if configured:
        return configured
    for service in runtime.services.values():
        for worker in service.subscriptions.values():
            if isinstance(worker.source, KafkaSource):
                return worker.source.config.bootstrap
    return None


async def _service_status(runtime: Runtime, name: str) -> str:
    if name in runtime.services:
        return await database_status(runtime.services[name].store)
    try:  # hosted by another process: ask its own /health
        answer = await asyncio.wait_for(runtime.transport.client(name).http.get("/health"), CHECK_TIMEOUT)
        return str(json.loads(answer.content).get("database", UNHEALTHY))
    except Exception:
        return UNHEALTHY


def endpoint(runtime: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """The process's ``GET /health``."""
    # the gateway answers for every service; a process of one service (distributed) for its own
    names = [s.name for s in runtime.system.services] if runtime.edge else list(runtime.services)

    async def health(request: Request) -> Response:
        states = await asyncio.gather(*(_service_status(runtime, n) for n in names))
        services = dict(zip(names, states, strict=True))
        database = HEALTHY if all(s == HEALTHY for s in states) else UNHEALTHY
        kafka = await kafka_status(bootstrap_of(runtime))
        status, code = overall(database, kafka)
        body: dict[str, Any] = {"status": status, "timestamp": int(runtime.clock.timestamp()), "database": database,
                                "kafka": kafka, "services": services}
        return JSONResponse(body, status_code=code)

    return health
