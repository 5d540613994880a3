"""The unit of work: what one command, event handler or timer changes, committed at once.

Handlers load aggregates, record events, queue writes to the service's tables, schedule or
cancel timers; ``commit`` hands everything to the store as one batch (one transaction). A
``ConcurrencyError`` from the commit means another unit of work won a race: the caller runs the
handler again on fresh state (see ``run_with_retries``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.sql import Executable

from junction.aggregate import Aggregate
from junction.clock import Clock
from junction.errors import ConcurrencyError, NotFound
from junction.events import Envelope, Event
from junction.ids import Snowflake
from junction.store import ANY_VERSION, Append, Batch, NewEvent, RowWrite, Snapshot, Store, Timer

if TYPE_CHECKING:
    from junction.grpc.client import GrpcChannels
    from junction.transport import ServiceClient, Transport

A = TypeVar("A", bound=Aggregate)
T = TypeVar("T")


class UnitOfWork:
    """One atomic change to a service's store."""

    def __init__(self, store: Store, clock: Clock, ids: Snowflake, transport: Transport | None = None,
                 message: Envelope | None = None) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.message = message  # the event being handled, if any
        self._instant = clock.timestamp()  # a unit of work happens at one instant
        self.timer: Timer | None = None  # the timer being fired, if any
        self._transport = transport
        self._aggregates: dict[str, Aggregate] = {}
        self._batch = Batch()
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self.position = 0  # the log position of the last event committed

    # -- time and ids ----------------------------------------------------------------------------
    def now(self) -> datetime:
        """The instant of this unit of work (the platform clock when it began)."""
        return datetime.fromtimestamp(self._instant, UTC)

    def event_time(self) -> datetime:
        """When the handled event happened (a timer's due time; else now)."""
        if self.message is not None:
            return self.message.occurred_at
        if self.timer is not None:
            return datetime.fromtimestamp(self.timer.due, UTC)
        return self.now()

    def new_id(self) -> str:
        """A fresh Snowflake id (Base62)."""
        return self.ids.next()

    async def next_value(self, sequence: str) -> int:
        """The next number of the service's counter ``sequence`` (1, 2, 3, ...): for contracts that promise
        small serial ids. Taken at once, like a SQL sequence, so a unit of work that fails leaves a gap."""
        return await self.store.next_value(sequence)

    # -- aggregates ------------------------------------------------------------------------------
    async def load(self, cls: type[A], aggregate_id: str) -> A | None:
        """The aggregate from snapshot + tail, or None when its stream is empty."""
        aggregate = await self._load(cls, aggregate_id)
        return aggregate if aggregate.exists else None

    async def get(self, cls: type[A], aggregate_id: str, missing: str | None = None) -> A:
        """The aggregate, or NotFound("<missing>") when it does not exist."""
        aggregate = await self.load(cls, aggregate_id)
        if aggregate is None:
            raise NotFound(missing or f"{cls.stream_type or cls.__name__.lower()} not found")
        return aggregate

    async def create(self, cls: type[A], aggregate_id: str) -> A:
        """A new aggregate (expected not to exist: a race with another creator is a conflict)."""
        aggregate = cls(id=aggregate_id)
        self._aggregates[aggregate.stream] = aggregate
        return aggregate

    async def _load(self, cls: type[A], aggregate_id: str) -> A:
        stream = cls.stream_of(aggregate_id)
        cached = self._aggregates.get(stream)
        if cached is not None:
            return cached  # type: ignore[return-value]
        snapshot = await self.store.load_snapshot(stream)
        if snapshot is not None and snapshot.type == cls.__name__:
            aggregate = cls.from_snapshot(snapshot.data, snapshot.version)
        else:
            aggregate = cls(id=aggregate_id)
        version = aggregate.version
        for envelope in await self.store.read_stream(stream, after_version=version):
            aggregate.apply(envelope.event)
            version = envelope.version
        aggregate.mark_committed(version)
        self._aggregates[stream] = aggregate
        return aggregate

    # -- raw events and state --------------------------------------------------------------------
    def append(self, stream: str, *events: Event, expected_version: int = ANY_VERSION,
               key: str | None = None) -> None:
        """Append events to a stream that no aggregate models (for example a log of positions)."""
        new_events = [self._new_event(e, key or stream) for e in events]
        self._batch.appends.append(Append(stream, expected_version, new_events))

    def execute(self, *statements: Executable) -> None:
        """Queue writes to the service's own tables."""
        self._batch.statements.extend(statements)

    def require(self, statement: Executable, rows: int = 1) -> None:
        """Queue a guarded write (``UPDATE ... WHERE stock >= :q``): unless it changes at least ``rows``
        rows, the commit raises ConditionFailed and writes nothing."""
        self._batch.expected_rows[len(self._batch.statements)] = rows
        self._batch.statements.append(statement)

    def insert(self, table: Table, values: dict[str, Any]) -> None:
        """Queue a row for one of the service's tables (many rows run as one prepared statement)."""
        self._batch.statements.append(RowWrite(table, values))

    def upsert(self, table: Table, values: dict[str, Any], keys: Sequence[str],
               update: dict[str, Any] | None = None) -> None:
        """Queue an insert that, when ``keys`` clash, applies ``update`` instead (or nothing).

        Written in runs of one prepared statement (``RowWrite``), kept per shape; an SQL expression in ``update``
        (``count + 1``) is part of the statement, so one made once (a module constant) keeps it prepared."""
        self._batch.statements.append(RowWrite(table, values, tuple(keys), update))

    async def fetch_all(self, statement: Executable) -> Sequence[Any]:
        """Read the service's tables (committed state)."""
        return await self.store.fetch_all(statement)

    async def fetch_one(self, statement: Executable) -> Any | None:
        """Read one row of the service's tables."""
        return await self.store.fetch_one(statement)

    # -- timers ----------------------------------------------------------------------------------
    def schedule(self, at: datetime | float, name: str, payload: dict[str, Any] | None = None,
                 timer_id: str | None = None) -> str:
        """At ``at`` (platform time), run the timer handler ``name``; the timer's id."""
        due = at.timestamp() if isinstance(at, datetime) else at
        timer = Timer(timer_id or self.new_id(), name, due, payload or {})
        self._batch.timers.append(timer)
        return timer.id

    def cancel(self, timer_id: str) -> None:
        """Cancel a timer (no error if it already fired)."""
        self._batch.cancelled_timers.append(timer_id)

    # -- other services --------------------------------------------------------------------------
    def call(self, service: str) -> ServiceClient:
        """A client for another service's HTTP contract."""
        if self._transport is None:
            raise LookupError("this unit of work has no transport")
        return self._transport.client(service)

    @property
    def channels(self) -> GrpcChannels:
        """The gRPC channels to other services (``junction.grpc.GrpcClient`` calls through them)."""
        if self._transport is None:
            raise LookupError("this unit of work has no transport")
        return self._transport.channels

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run ``action`` once the commit succeeded."""
        self._after_commit.append(action)

    @property
    def batch(self) -> Batch:
        """The batch gathered so far (the platform adds inbox and checkpoint rows to it)."""
        return self._batch

    # -- commit ----------------------------------------------------------------------------------
    def _new_event(self, event: Event, key: str) -> NewEvent:
        message = self.message
        return NewEvent(
            id=self.ids.next_int(), type=event.event_name, schema_version=event.schema_version,
            json=event.payload_json(), key=key, occurred_at=self._instant,
            causation_id=message.id if message else None,
            correlation_id=(message.correlation_id or message.id) if message else None,
        )

    async def commit(self) -> int:
        """Write everything in one transaction; the log position of the last event appended (0 if none).

        A route handler may commit early to learn the outcome (a guarded write's ConditionFailed, a
        clash) before it answers: what it gathered is taken, so the platform's commit after the
        handler returns writes only what came later.
        """
        batch, self._batch = self._batch, Batch()
        after_commit, self._after_commit = self._after_commit, []
        committed_versions: list[tuple[Aggregate, int]] = []
        for aggregate in self._aggregates.values():
            pending = aggregate.take_pending()
            if not pending:
                continue
            batch.appends.append(Append(
                aggregate.stream, aggregate.version, [self._new_event(e, aggregate.id) for e in pending]
            ))
            new_version = aggregate.version + len(pending)
            committed_versions.append((aggregate, new_version))
            if new_version // aggregate.snapshot_every > aggregate.version // aggregate.snapshot_every:
                batch.snapshots.append(
                    Snapshot(aggregate.stream, new_version, type(aggregate).__name__, aggregate.snapshot_data())
                )
        self.position = await self.store.commit(batch)
        if batch.timers:
            self.store.timers_changed.notify()
        for aggregate, version in committed_versions:
            aggregate.mark_committed(version)
        for action in after_commit:
            await action()
        return self.position


async def run_with_retries(make_uow: Callable[[], UnitOfWork], work: Callable[[UnitOfWork], Awaitable[T]],
                           attempts: int = 8) -> T:
    """Run ``work`` in a fresh unit of work and commit, again on ConcurrencyError."""
    for attempt in range(attempts):
        uow = make_uow()
        try:
            result = await work(uow)
            await uow.commit()
            return result
        except ConcurrencyError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
