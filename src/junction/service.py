"""Declarative service definitions: a service is its domain code plus these declarations.

    accounting = Service("accounting", worker=5)
    payments = accounting.table("payments", Column("id", String, primary_key=True), ...)

    @accounting.route("PUT", "/payments")
    async def create_payment(body: CreatePayment, uow: UnitOfWork) -> PaymentOut: ...

    @accounting.on("rentals", RentalStopped)              # effectively once, per-key order
    async def release(event: RentalStopped, uow: UnitOfWork) -> None: ...

    balances = accounting.projection("balances", tables=[balance_table])
    @balances.on("accounting", PaymentUpdated)           # rebuilt by `junction replay`
    async def on_payment(event: PaymentUpdated, uow: UnitOfWork) -> None: ...

    @accounting.timer("expire-hold")                      # durable, fires by the platform clock
    async def expire(payload: dict, uow: UnitOfWork) -> None: ...

Nothing here opens a file or a socket: the runtime turns definitions into running services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table

from junction.events import Event

Handler = Callable[..., Awaitable[Any]]


@dataclass
class RouteSpec:
    """One HTTP route of a service's contract."""

    method: str
    path: str
    handler: Handler


@dataclass
class SubscriptionSpec:
    """A consumer group: handlers for event types from one source log."""

    name: str
    source: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    projection: str | None = None


@dataclass
class ProjectionSpec:
    """A read model: tables filled only by subscriptions, so it can be rebuilt by replay."""

    name: str
    tables: list[Table]
    service: Service

    def on(self, source: str, *events: type[Event]) -> Callable[[Handler], Handler]:
        """Declare a handler of this projection for events from ``source``'s log."""
        return self.service._subscribe(f"projection:{self.name}:{source}", source, events, self.name)


class Service:
    """The declarations of one service."""

    def __init__(self, name: str, worker: int) -> None:
        self.name = name
        self.worker = worker
        self.metadata = MetaData()
        self.routes: list[RouteSpec] = []
        self.subscriptions: dict[str, SubscriptionSpec] = {}
        self.projections: dict[str, ProjectionSpec] = {}
        self.timers: dict[str, Handler] = {}
        self.on_start: list[Callable[[Any], Awaitable[None]]] = []

    def table(self, name: str, *columns: Any) -> Table:
        """Declare a table of the service's own store."""
        return Table(name, self.metadata, *columns)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Declare an HTTP route; the handler's annotated parameters say what it takes."""

        def register(handler: Handler) -> Handler:
            self.routes.append(RouteSpec(method.upper(), path, handler))
            return handler

        return register

    def on(self, source: str, *events: type[Event], group: str = "handlers") -> Callable[[Handler], Handler]:
        """Declare an event handler for events from ``source``'s log (effectively once)."""
        return self._subscribe(f"{group}:{source}", source, events, None)

    def projection(self, name: str, tables: list[Table]) -> ProjectionSpec:
        """Declare a read model that ``junction replay`` can rebuild."""
        spec = ProjectionSpec(name, tables, self)
        self.projections[name] = spec
        return spec

    def timer(self, name: str) -> Callable[[Handler], Handler]:
        """Declare what a durable timer named ``name`` does when it fires."""

        def register(handler: Handler) -> Handler:
            self.timers[name] = handler
            return handler

        return register

    def started(self, hook: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Run ``hook(service_runtime)`` once the service is up (seed data, checks)."""
        self.on_start.append(hook)
        return hook

    def _subscribe(self, name: str, source: str, events: tuple[type[Event], ...],
                   projection: str | None) -> Callable[[Handler], Handler]:
        spec = self.subscriptions.setdefault(name, SubscriptionSpec(name, source, projection=projection))

        def register(handler: Handler) -> Handler:
            for event in events:
                if event.event_name in spec.handlers:
                    raise ValueError(f"{self.name}: {event.event_name} handled twice in {name}")
                spec.handlers[event.event_name] = handler
            return handler

        return register


__all__ = ["Column", "ProjectionSpec", "RouteSpec", "Service", "SubscriptionSpec"]
