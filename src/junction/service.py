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

    @inventory.grpc(inventory_pb2_grpc.add_InventoryServiceServicer_to_server, port=50051)
    class InventoryService:                               # served by ``junction.grpc``
        async def CheckAndReduceInventory(self, request: InventoryRequest, uow: UnitOfWork) -> InventoryResponse: ...

    @accounting.background("reconcile")                   # a task while the service is hosted
    async def reconcile(service_runtime) -> None: ...

    order.export("order-placed", OrderPlaced, AvroCodec.from_file("order-placed.avsc"))  # also on a named topic

Nothing here opens a file or a socket: the runtime turns definitions into running services.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Column, MetaData, Table

from junction.errors import HttpError
from junction.events import Event
from junction.http_errors import ErrorFormat, json_errors

Handler = Callable[..., Awaitable[Any]]
S = TypeVar("S")


@dataclass
class RouteSpec:
    """One HTTP route of a service's contract."""

    method: str
    path: str
    handler: Handler
    invalid: HttpError | None = None  # the answer to a body that fails validation (default: 422 JSON)
    errors: ErrorFormat = json_errors  # how its errors look (the service's contract)


@dataclass
class ServicerSpec:
    """A gRPC servicer of a service: its methods take ``request`` and ``uow`` like routes (``junction.grpc``)."""

    servicer: Any
    register: Callable[[Any, Any], None]  # the generated ``add_<Name>Servicer_to_server``


@dataclass
class SubscriptionSpec:
    """A consumer group: handlers for event types from one source log."""

    name: str
    source: str
    handlers: dict[str, Handler] = field(default_factory=dict)
    projection: str | None = None
    # Events handled per transaction. Above 1 the handlers must only write through the unit of work (no
    # reads of what an earlier event of the same batch wrote, no calls out): a failing batch goes again one
    # event at a time, with the usual retries and parking.
    batch: int = 1


@dataclass
class ProjectionSpec:
    """A read model: tables filled only by subscriptions, so it can be rebuilt by replay."""

    name: str
    tables: list[Table]
    service: Service
    batch: int = 1  # events per transaction (see SubscriptionSpec.batch): replays go that much faster

    def on(self, source: str, *events: type[Event]) -> Callable[[Handler], Handler]:
        """Declare a handler of this projection for events from ``source``'s log."""
        return self.service._subscribe(f"projection:{self.name}:{source}", source, events, self.name, self.batch)


@dataclass
class BackgroundSpec:
    """A background task of a service, run by whichever process hosts it (e.g. a mail sender)."""

    name: str
    run: Callable[[Any], Awaitable[None]]  # run(service_runtime) until cancelled
    idle: Callable[[Any], Awaitable[bool]] | None = None  # idle(service_runtime): nothing in flight (settle)
    status: Callable[[Any], Awaitable[dict[str, Any]]] | None = None  # shown in the runtime's status


class Codec(Protocol):
    """How an exported event's payload is written to its topic and read back (``junction.avro.AvroCodec``)."""

    schema_id: str  # names the writer's schema in each record, so readers of a later version can resolve it

    def bind(self, event: type[Event]) -> None:
        """Check that the codec can carry ``event`` (raise ValueError saying why not)."""

    def encode(self, payload: dict[str, Any]) -> bytes:
        """The record value for an event's JSON payload."""

    def decode(self, data: bytes, schema_id: str | None = None) -> dict[str, Any]:
        """The event's JSON payload from a record value written with schema ``schema_id``."""


@dataclass(frozen=True)
class ExportSpec:
    """Events of one type also published to a named broker topic with a codec (``Service.export``)."""

    topic: str
    event: type[Event]
    codec: Codec


class Service:
    """The declarations of one service."""

    def __init__(self, name: str, worker: int, errors: ErrorFormat = json_errors) -> None:
        self.name = name
        self.worker = worker
        self.errors = errors  # how its routes' errors look (``junction.http_errors``)
        self.metadata = MetaData()
        self.routes: list[RouteSpec] = []
        self.subscriptions: dict[str, SubscriptionSpec] = {}
        self.projections: dict[str, ProjectionSpec] = {}
        self.timers: dict[str, Handler] = {}
        self.background_tasks: dict[str, BackgroundSpec] = {}
        self.on_start: list[Callable[[Any], Awaitable[None]]] = []
        self.servicers: list[ServicerSpec] = []
        self.grpc_port: int | None = None  # where its servicers answer unless configured otherwise
        self.exports: list[ExportSpec] = []

    def table(self, name: str, *columns: Any) -> Table:
        """Declare a table of the service's own store."""
        return Table(name, self.metadata, *columns)

    def route(self, method: str, path: str, invalid: HttpError | None = None) -> Callable[[Handler], Handler]:
        """Declare an HTTP route; the handler's annotated parameters say what it takes. ``invalid`` is
        the answer to a body that fails validation, for contracts that document their own."""

        def register(handler: Handler) -> Handler:
            self.routes.append(RouteSpec(method.upper(), path, handler, invalid, self.errors))
            return handler

        return register

    def grpc(self, register: Callable[[Any, Any], None], port: int) -> Callable[[type[S]], type[S]]:
        """Declare a gRPC servicer class, registered with the generated ``add_<Name>Servicer_to_server``
        and served on ``port`` unless configured otherwise (``<service>_grpc_port``)."""
        if self.grpc_port not in (None, port):
            raise ValueError(f"{self.name}: servicers on two ports ({self.grpc_port}, {port})")
        self.grpc_port = port

        def declare(servicer: type[S]) -> type[S]:
            self.servicers.append(ServicerSpec(servicer(), register))
            return servicer

        return declare

    def export(self, topic: str, event: type[Event], codec: Codec) -> ExportSpec:
        """Also publish ``event`` to broker topic ``topic`` encoded by ``codec`` (distributed topology); other
        services' subscriptions to ``event`` from this service then read that topic. Embedded, nothing changes."""
        if any(e.event.event_name == event.event_name for e in self.exports):
            raise ValueError(f"{self.name}: {event.event_name} is exported twice")
        codec.bind(event)
        spec = ExportSpec(topic, event, codec)
        self.exports.append(spec)
        return spec

    def on(self, source: str, *events: type[Event], group: str = "handlers",
           batch: int = 1) -> Callable[[Handler], Handler]:
        """Declare an event handler for events from ``source``'s log (effectively once); ``batch`` events per
        transaction when the handlers only write (``SubscriptionSpec.batch``)."""
        return self._subscribe(f"{group}:{source}", source, events, None, batch)

    def projection(self, name: str, tables: list[Table], batch: int = 1) -> ProjectionSpec:
        """Declare a read model that ``junction replay`` can rebuild; ``batch`` events per transaction when its
        handlers only write (``SubscriptionSpec.batch``)."""
        spec = ProjectionSpec(name, tables, self, batch)
        self.projections[name] = spec
        return spec

    def timer(self, name: str) -> Callable[[Handler], Handler]:
        """Declare what a durable timer named ``name`` does when it fires."""

        def register(handler: Handler) -> Handler:
            self.timers[name] = handler
            return handler

        return register

    def background(self, name: str, idle: Callable[[Any], Awaitable[bool]] | None = None,
               status: Callable[[Any], Awaitable[dict[str, Any]]] | None = None
               ) -> Callable[[Callable[[Any], Awaitable[None]]], Callable[[Any], Awaitable[None]]]:
        """Declare a background task ``run(service_runtime)``, started with the service and cancelled on stop;
        ``idle`` tells ``Runtime.settle`` whether it has work in flight, ``status`` what ``junction status`` shows."""

        def register(run: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
            if name in self.background_tasks:
                raise ValueError(f"{self.name}: background task {name!r} declared twice")
            self.background_tasks[name] = BackgroundSpec(name, run, idle, status)
            return run

        return register

    def started(self, hook: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
        """Run ``hook(service_runtime)`` once the service is up (seed data, checks)."""
        self.on_start.append(hook)
        return hook

    def _subscribe(self, name: str, source: str, events: tuple[type[Event], ...],
                   projection: str | None, batch: int = 1) -> Callable[[Handler], Handler]:
        if batch < 1:
            raise ValueError(f"{self.name}: a batch of {batch} events")
        spec = self.subscriptions.setdefault(name, SubscriptionSpec(name, source, projection=projection, batch=batch))

        def register(handler: Handler) -> Handler:
            for event in events:
                if event.event_name in spec.handlers:
                    raise ValueError(f"{self.name}: {event.event_name} handled twice in {name}")
                spec.handlers[event.event_name] = handler
            return handler

        return register


__all__ = ["BackgroundSpec", "Codec", "Column", "ExportSpec", "ProjectionSpec", "RouteSpec", "Service",
           "SubscriptionSpec"]
