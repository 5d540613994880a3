"""Subscriptions: what changes live, pushed from the services' logs through the platform's live feed.

Shared work is done once per event, not once per subscriber: the vehicle tracker folds the
vehicles and rentals logs into each vehicle's current state, the customer tracker re-reads a
customer's view after its events; subscribers only filter what they may see.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import structlog
from ariadne import SubscriptionType
from graphql import GraphQLResolveInfo

from ebike.contracts.api import rfc3339
from ebike.contracts.events import (
    CostUpdated,
    CustomerPositionUpdated,
    ExpenseCreated,
    PaymentCreated,
    PaymentDeleted,
    PaymentUpdated,
    PreliminaryExpenseCreated,
    PreliminaryExpenseFinalized,
    RentalStarted,
    RentalStopped,
    UserLoggedIn,
    UserRegistered,
    VehicleCreated,
    VehicleDeleted,
    VehicleUpdated,
)
from ebike.gateway import dto
from ebike.gateway.resolvers import customer_path, seg
from ebike.gateway.session import ADMIN, CUSTOMER, SIGNED_IN, Context, Session, require
from junction.events import Envelope
from junction.gateway.live import Broadcast, Subscription
from junction.transport import UpstreamError

if TYPE_CHECKING:
    from ebike.gateway.app import Gateway

log = structlog.get_logger()
subscription = SubscriptionType()

VehicleChange = tuple[str, dto.Dto | None]  # (id, the vehicle's DTO, or None once deleted)


Source = Callable[..., Awaitable[AsyncIterator[Any]]]


def _names(*classes: type) -> frozenset[str]:
    return frozenset(c.__name__ for c in classes)


def source(field: str) -> Callable[[Source], Source]:
    """Register a subscription's source: a coroutine that checks the caller, then returns the stream.

    Checking before the stream starts makes a refused subscription an ``error`` message of the
    protocol, not an item. Each streamed item is the field's value as it is.
    """
    def register(fn: Source) -> Source:
        subscription.set_source(field, cast(Any, fn))
        subscription.set_field(field, lambda item, *_: item)
        return fn
    return register


class Once:
    """Starts a tracker's worker on its feed once; every caller waits until it runs."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._ready: asyncio.Future[None] | None = None

    async def start(self, feed: Callable[[], Awaitable[Subscription[Envelope]]], name: str,
                    work: Callable[[Subscription[Envelope]], Coroutine[Any, Any, None]]) -> None:
        """Subscribe to ``feed`` and spawn ``work`` on it, the first time; later calls wait for that."""
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                self.gateway.runtime.spawn(name, work(await feed()))
            except BaseException as error:
                self._ready.set_exception(error)
                self._ready = None
                raise
            self._ready.set_result(None)
        await asyncio.shield(self._ready)


# -- vehicles ----------------------------------------------------------------------------------------
class VehicleTracker:
    """Every vehicle's current DTO, folded from the vehicles and rentals logs as they grow."""

    EVENTS = _names(VehicleCreated, VehicleUpdated, VehicleDeleted, RentalStarted, RentalStopped, CostUpdated)

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.changes: Broadcast[VehicleChange] = Broadcast()
        self._vehicles: dict[str, dto.Dto] = {}
        self._started = Once(gateway)

    async def subscribe(self) -> Subscription[VehicleChange]:
        """Vehicle changes from now on."""
        await self._started.start(lambda: self.gateway.feed.subscribe("vehicles", "rentals", types=self.EVENTS),
                                  "live/vehicle-tracker", self._run)
        return self.changes.subscribe()

    async def _run(self, events: Subscription[Envelope]) -> None:
        async for envelope in events:
            try:
                change = await self._fold(envelope)
            except Exception as error:  # one bad event must not end the live view for everyone
                log.warning("vehicle tracker skipped an event", type=envelope.type, error=repr(error))
                continue
            if change is not None:
                self.changes.publish(change)

    async def _fold(self, envelope: Envelope) -> VehicleChange | None:
        """Apply one event; the change it makes to a vehicle, if any."""
        event = envelope.event
        match event:
            case VehicleCreated():
                created: dto.Dto = {
                    "id": event.id, "type": event.type, "positionX": event.position_x, "positionY": event.position_y,
                    "battery": event.battery, "status": "AVAILABLE", "target": None, "reservedFor": None,
                    "activeRental": None, "createdAt": rfc3339(envelope.occurred_at)}
                self._vehicles[event.id] = created
                return event.id, dict(created)
            case VehicleDeleted():
                self._vehicles.pop(event.id, None)
                return event.id, None
            case VehicleUpdated():
                vehicle = await self._vehicle(event.id)
                if vehicle is not None:
                    vehicle.update(positionX=event.position_x, positionY=event.position_y, battery=event.battery,
                                   status=event.status, reservedFor=event.reserved_for,
                                   target=event.target.model_dump() if event.target else None)
                return (event.id, dict(vehicle)) if vehicle else None
            case RentalStarted() | CostUpdated() | RentalStopped():
                vehicle = await self._vehicle(event.vehicle_id)
                if vehicle is None:
                    return None
                rental = vehicle.get("activeRental")
                if isinstance(event, RentalStarted):
                    vehicle["activeRental"] = {"id": event.id, "vehicleId": event.vehicle_id,
                                               "customerId": event.customer_id, "vehicleType": event.vehicle_type,
                                               "start": event.start, "cost": 0}
                elif rental is None or rental["id"] != event.id:
                    return None  # about a rental this vehicle no longer has
                elif isinstance(event, CostUpdated):
                    vehicle["activeRental"] = {**rental, "cost": event.cost}
                else:
                    vehicle["activeRental"] = None
                return event.vehicle_id, dict(vehicle)
        return None

    async def _vehicle(self, vehicle_id: str) -> dto.Dto | None:
        """The state of a vehicle, read once from the vehicles service when first met."""
        if vehicle_id not in self._vehicles:
            try:
                self._vehicles[vehicle_id] = await self.gateway.upstreams.call(
                    "vehicles", "GET", f"/vehicles/{seg(vehicle_id)}")
            except UpstreamError as error:
                if error.status != 404:
                    raise
                return None  # deleted meanwhile
        return self._vehicles[vehicle_id]


def visible_to(vehicle: dto.Dto, customer_id: str) -> bool:
    """What a customer may see: rentable vehicles and their own (rented, coming or waiting for them)."""
    rental = vehicle.get("activeRental")
    if rental is not None:  # the two logs interleave: a rental may be known before the status follows
        return bool(rental["customerId"] == customer_id)
    return vehicle["status"] == "AVAILABLE" or vehicle.get("reservedFor") == customer_id


async def vehicle_updates(changes: Subscription[VehicleChange], me: Session) -> AsyncIterator[dto.Dto]:
    """VehicleUpdate for each change the caller may see; ``vehicle: null`` once when one leaves their view."""
    hidden: set[str] = set()  # told "null" already: the rest of a hidden vehicle's life is not theirs to see
    try:
        async for vehicle_id, vehicle in changes:
            if me.role == ADMIN:
                yield {"id": vehicle_id, "vehicle": dto.vehicle(vehicle) if vehicle else None}
            elif vehicle is not None and visible_to(vehicle, me.id):
                hidden.discard(vehicle_id)
                yield {"id": vehicle_id, "vehicle": dto.vehicle(vehicle)}
            elif vehicle_id not in hidden:
                hidden.add(vehicle_id)
                yield {"id": vehicle_id, "vehicle": None}
    finally:
        await changes.aclose()


@source("vehicleUpdated")
async def vehicle_updated(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[dto.Dto]:
    """Signed in: vehicle changes (filtered per caller)."""
    ctx: Context = info.context
    me = require(ctx, SIGNED_IN)
    return vehicle_updates(await ctx.gateway.vehicles.subscribe(), me)


# -- the caller's rental and balance -----------------------------------------------------------------
async def own_events(ctx: Context, me: Session, service: str, *types: type) -> Subscription[Envelope]:
    """The caller's events of ``types`` in ``service``'s log, from now on."""
    return await ctx.gateway.feed.subscribe(service, types=_names(*types),
                                            where=lambda e: e.data.get("customerId") == me.id)


async def rental_updates(ctx: Context, me: Session, events: Subscription[Envelope]) -> AsyncIterator[dto.Dto]:
    """The caller's rental after each of its events (``end`` set once it stopped)."""
    costs: dict[str, int] = {}
    try:
        async for envelope in events:
            event = envelope.event
            match event:
                case RentalStarted():
                    costs[event.id] = 0
                    yield {"id": event.id, "start": event.start, "end": None, "cost": 0}
                case CostUpdated():
                    costs[event.id] = event.cost
                    yield {"id": event.id, "start": event.start, "end": None, "cost": event.cost}
                case RentalStopped():
                    if event.id not in costs:  # started before this subscription: ask for the total
                        past = await ctx.call("rentals", "GET", customer_path(me, "/rentals/past"))
                        costs[event.id] = next((r["cost"] for r in past if r["id"] == event.id), 0)
                    yield {"id": event.id, "start": event.start, "end": event.end, "cost": costs[event.id]}
    finally:
        await events.aclose()


@source("activeRentalUpdated")
async def active_rental_updated(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[dto.Dto]:
    """CUSTOMER: own rental changes."""
    ctx: Context = info.context
    me = require(ctx, (CUSTOMER,))
    events = await own_events(ctx, me, "rentals", RentalStarted, CostUpdated, RentalStopped)
    return rental_updates(ctx, me, events)


async def balance_updates(ctx: Context, me: Session, events: Subscription[Envelope]) -> AsyncIterator[int]:
    """The caller's balance, read from accounting after each of their money events, when it changed."""
    last: int | None = None
    try:
        async for _ in events:
            answer = await ctx.call("accounting", "GET", customer_path(me, "/credit-balance"))
            balance = int(answer["creditBalance"])
            if balance != last:
                last = balance
                yield balance
    finally:
        await events.aclose()


@source("creditBalanceUpdated")
async def credit_balance_updated(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[int]:
    """CUSTOMER: own balance changes."""
    ctx: Context = info.context
    me = require(ctx, (CUSTOMER,))
    events = await own_events(ctx, me, "accounting", PaymentUpdated, PaymentDeleted, ExpenseCreated,
                              PreliminaryExpenseCreated, PreliminaryExpenseFinalized)
    return balance_updates(ctx, me, events)


# -- admins: payments and customers ------------------------------------------------------------------
async def payment_updates(events: Subscription[Envelope]) -> AsyncIterator[dto.Dto]:
    """PaymentUpdate for each payment event."""
    try:
        async for envelope in events:
            data = envelope.data
            yield {"id": data["id"], "customerId": data["customerId"], "amount": data["amount"],
                   "status": data["status"], "deleted": envelope.type == PaymentDeleted.__name__}
    finally:
        await events.aclose()


@source("paymentUpdated")
async def payment_updated(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[dto.Dto]:
    """ADMIN: payments created, decided or deleted."""
    ctx: Context = info.context
    require(ctx, (ADMIN,))
    types = _names(PaymentCreated, PaymentUpdated, PaymentDeleted)
    return payment_updates(await ctx.gateway.feed.subscribe("accounting", types=types))


class CustomerTracker:
    """Re-reads a customer's view after the events that change it, and broadcasts it when it changed.

    The view is a projection, updated after its events. A burst of events is read once (after
    ``debounce`` seconds); a view older than the latest event is read again, up to ``attempts``
    times; one exactly as old is read again a few more times (``rechecks``), because events of
    different logs can share a timestamp (always so on a virtual clock).
    """

    SOURCES = {"auth": _names(UserRegistered, UserLoggedIn), "customers": _names(CustomerPositionUpdated),
               "accounting": _names(PaymentUpdated, PaymentDeleted, ExpenseCreated),
               "rentals": _names(RentalStarted, RentalStopped, CostUpdated)}

    def __init__(self, gateway: Gateway, debounce: float = 0.02, attempts: int = 20, rechecks: int = 5) -> None:
        self.gateway = gateway
        self.debounce = debounce
        self.attempts = attempts
        self.rechecks = rechecks
        self.changes: Broadcast[dto.Dto] = Broadcast()
        self._started = Once(gateway)
        self._published: dict[str, dto.Dto] = {}

    async def subscribe(self) -> Subscription[dto.Dto]:
        """Customer views, each after it changed."""
        types = frozenset().union(*self.SOURCES.values())
        await self._started.start(lambda: self.gateway.feed.subscribe(*self.SOURCES, types=types),
                                  "live/customer-tracker", self._run)
        return self.changes.subscribe()

    @staticmethod
    def _customer_of(envelope: Envelope) -> str | None:
        data = envelope.data
        if envelope.type == UserRegistered.__name__ and data.get("role") != "CUSTOMER":
            return None
        return data.get("customerId") or data.get("id")

    async def _run(self, events: Subscription[Envelope]) -> None:
        waiting: dict[str, tuple[datetime, int]] = {}  # customer → (latest event time, reads left)
        while True:
            await self._collect(events, waiting)
            if not self.changes.subscribers:
                waiting.clear()  # nobody listens: nothing to read
                continue
            for customer_id, (since, left) in list(waiting.items()):
                try:
                    view = await self._read(customer_id)
                except Exception as error:  # read again at the next round
                    log.warning("customer tracker could not read a view", customer=customer_id, error=repr(error))
                    view = None
                if view is not None and self._published.get(customer_id) != view:
                    self._published[customer_id] = view
                    self.changes.publish(dto.customer(view))
                seen = datetime.fromisoformat(view["updatedAt"]) if view else None
                if seen is not None and seen == since:
                    left = min(left, self.rechecks)
                if (seen is not None and seen > since) or left <= 1:
                    del waiting[customer_id]
                else:
                    waiting[customer_id] = (since, left - 1)

    async def _collect(self, events: Subscription[Envelope], waiting: dict[str, tuple[datetime, int]]) -> None:
        """Wait for events (at most ``debounce`` while views are awaited), then gather a burst."""
        loop = asyncio.get_running_loop()
        deadline: float | None = loop.time() + self.debounce if waiting else None
        while True:
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                envelope = await asyncio.wait_for(events.__anext__(), timeout)
            except TimeoutError:
                return
            customer_id = self._customer_of(envelope)
            if customer_id is not None:
                since = max(waiting.get(customer_id, (envelope.occurred_at, 0))[0], envelope.occurred_at)
                waiting[customer_id] = (since, self.attempts)
            if deadline is None:
                deadline = loop.time() + self.debounce

    async def _read(self, customer_id: str) -> dto.Dto | None:
        """The customer's view, or None while it does not exist."""
        try:
            view: dto.Dto = await self.gateway.upstreams.call("customers", "GET", f"/customers/{seg(customer_id)}")
        except UpstreamError as error:
            if error.status != 404:
                raise
            return None
        return view


async def customer_updates(changes: Subscription[dto.Dto]) -> AsyncIterator[dto.Dto]:
    """Customer views as they change."""
    try:
        async for customer in changes:
            yield customer
    finally:
        await changes.aclose()


@source("customerUpdated")
async def customer_updated(_: Any, info: GraphQLResolveInfo) -> AsyncIterator[dto.Dto]:
    """ADMIN: customer views as they change."""
    ctx: Context = info.context
    require(ctx, (ADMIN,))
    return customer_updates(await ctx.gateway.customers.subscribe())

