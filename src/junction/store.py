"""The store port: what every service store (SQLite now, PostgreSQL later) implements.

A store keeps one service's event log (which doubles as its outbox), stream snapshots, durable
timers, subscription checkpoints, the inbox, parked messages, and the service's own tables
(declared with SQLAlchemy Core). Everything a unit of work gathers is written by ``commit`` in one
transaction, or not at all.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import MetaData, Table, bindparam
from sqlalchemy.sql import ClauseElement, Executable

from junction.errors import ConditionFailed
from junction.events import Envelope
from junction.signal import Signal

ANY_VERSION = -1  # expected version that accepts whatever the stream holds


@dataclass(slots=True)
class NewEvent:
    """An event to append: everything but its place in the stream and the log."""

    id: int  # a Snowflake; printed in Base62 when read back
    type: str
    schema_version: int
    json: str  # the payload, already encoded
    key: str
    occurred_at: float
    causation_id: str | None = None
    correlation_id: str | None = None


@dataclass(slots=True)
class Append:
    """Events for one stream, valid only if the stream is at ``expected_version``."""

    stream: str
    expected_version: int
    events: list[NewEvent]


@dataclass(slots=True)
class Snapshot:
    """An aggregate's state at ``version``."""

    stream: str
    version: int
    type: str
    data: dict[str, Any]


@dataclass(slots=True)
class Timer:
    """A durable "at ``due``, run ``name`` with ``payload``" row."""

    id: str
    name: str
    due: float
    payload: dict[str, Any]


@dataclass(slots=True)
class Parked:
    """A message parked for an operator: the first failing one of its key, or one queued behind it."""

    id: int
    subscription: str
    key: str
    envelope: Envelope
    error: str | None
    attempts: int
    parked_at: float
    retry_requested: bool


@dataclass(frozen=True, slots=True)
class RowWrite:
    """A row inserted; with ``keys``, on a clash of them updated with the plain values of ``update`` (left alone
    when there is none): an upsert. Stores write consecutive row writes of one shape as one prepared statement
    run over many rows (executemany): a projection's or a bulk load's writes cost a row each, not a SQL
    statement each.
    """

    table: Table
    values: dict[str, Any]
    keys: tuple[str, ...] = ()
    update: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[Any, ...]]:
        """What the rows written by one statement share: the table, the columns, the keys, the updated columns
        (with the identity of an SQL expression given for one, such as ``count + 1``: the statement embeds it)."""
        return self.table.name, tuple(self.values), self.keys, _update_shape(self.update)

    def parameters(self) -> dict[str, Any]:
        """This row's values for ``row_statement``'s bind parameters."""
        return {**{f"v_{k}": v for k, v in self.values.items()},
                **{f"u_{k}": v for k, v in (self.update or {}).items() if not isinstance(v, ClauseElement)}}


def _update_shape(update: dict[str, Any] | None) -> tuple[Any, ...]:
    return tuple((k, id(v)) if isinstance(v, ClauseElement) else k for k, v in (update or {}).items())


Write = Executable | RowWrite  # what a unit of work queues for the service's tables


_ROW_STATEMENTS: dict[tuple[Any, ...], Executable] = {}
ROW_STATEMENTS_KEPT = 4096  # shapes are few (a service's tables and the columns its code writes): a bound anyway


def row_statement(insert: Callable[[Table], Any], upsert: RowWrite) -> Executable:
    """The statement that writes every row of ``upsert``'s shape, its values bound by name
    (``RowWrite.parameters``); ``insert`` is the dialect's insert construct (SQLite's, PostgreSQL's).

    Made once per shape and kept: building an insert with SQLAlchemy (coercing every column and bind
    parameter, then its cache key) costs more than executing it on a request's hot path."""
    # an expression's id stands for it while the kept statement (which holds it) keeps it alive
    key = (insert, upsert.table, upsert.shape)
    statement = _ROW_STATEMENTS.get(key)
    if statement is None:
        if len(_ROW_STATEMENTS) >= ROW_STATEMENTS_KEPT:
            _ROW_STATEMENTS.clear()
        statement = _ROW_STATEMENTS[key] = _row_statement(insert, upsert)
    return statement


def _row_statement(insert: Callable[[Table], Any], upsert: RowWrite) -> Executable:
    statement = insert(upsert.table).values({k: bindparam(f"v_{k}") for k in upsert.values})
    if not upsert.keys:  # a plain insert: a clash is a unique violation, as for any statement
        return cast(Executable, statement)
    if not upsert.update:
        return cast(Executable, statement.on_conflict_do_nothing(index_elements=list(upsert.keys)))
    return cast(Executable, statement.on_conflict_do_update(
        index_elements=list(upsert.keys),
        set_={k: v if isinstance(v, ClauseElement) else bindparam(f"u_{k}") for k, v in upsert.update.items()}))


def runs(statements: Sequence[Write]) -> Iterator[tuple[int, Write, list[dict[str, Any]] | None]]:
    """The queued writes in order, consecutive row writes of one shape as one run: (index of its first
    write, the write, the rows' parameters for a run of row writes, else None)."""
    index = 0
    while index < len(statements):
        first = statements[index]
        if not isinstance(first, RowWrite):
            yield index, first, None
            index += 1
            continue
        end = index + 1
        while end < len(statements) and isinstance(statements[end], RowWrite) \
                and cast(RowWrite, statements[end]).shape == first.shape:
            end += 1
        yield index, first, [cast(RowWrite, s).parameters() for s in statements[index:end]]
        index = end


@dataclass(slots=True)
class Batch:
    """Everything a unit of work commits together."""

    appends: list[Append] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    statements: list[Write] = field(default_factory=list)
    # statement index -> the rows it must change at least (guarded writes: atomic conditional updates)
    expected_rows: dict[int, int] = field(default_factory=dict)
    timers: list[Timer] = field(default_factory=list)
    cancelled_timers: list[str] = field(default_factory=list)
    checkpoint: tuple[str, int] | None = None
    inbox: list[tuple[str, str]] = field(default_factory=list)
    park: list[tuple[str, str, Envelope, str | None, int]] = field(default_factory=list)
    unpark: list[int] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when committing would change nothing."""
        return not (
            self.appends or self.snapshots or self.statements or self.timers or self.cancelled_timers
            or self.checkpoint or self.inbox or self.park or self.unpark
        )

    def check_rows(self, index: int, changed: int) -> None:
        """Raise ConditionFailed when statement ``index`` changed fewer rows than it must (the store rolls back)."""
        expected = self.expected_rows.get(index, 0)
        if changed < expected:
            raise ConditionFailed(f"a guarded write changed {changed} row(s), {expected} required")


class Store(abc.ABC):
    """One service's durable state."""

    def __init__(self, service: str, metadata: MetaData | None = None) -> None:
        self.service = service
        self.metadata = metadata or MetaData()
        self.timers_changed = Signal()  # notified when a commit added timers

    @abc.abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema and get ready to serve."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    # -- events --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def commit(self, batch: Batch) -> int:
        """Write the batch in one transaction; the log position of its last event (0 if none)."""

    @abc.abstractmethod
    async def read_stream(self, stream: str, after_version: int = 0) -> list[Envelope]:
        """The stream's events after ``after_version``, in version order."""

    @abc.abstractmethod
    async def stream_version(self, stream: str) -> int:
        """The stream's current version (0 when it has no events)."""

    @abc.abstractmethod
    async def read_log(self, after: int = 0, limit: int = 500) -> list[Envelope]:
        """Committed events after global position ``after``, in commit order, never skipping one."""

    @abc.abstractmethod
    async def head(self) -> int:
        """The highest committed global position (0 when empty)."""

    @abc.abstractmethod
    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The latest snapshot of a stream."""

    # -- the service's own tables --------------------------------------------------------------
    @abc.abstractmethod
    async def fetch_all(self, statement: Executable) -> Sequence[Any]:
        """Rows of a query (mappings by column name)."""

    async def fetch_one(self, statement: Executable) -> Any | None:
        """The first row of a query, or None."""
        rows = await self.fetch_all(statement)
        return rows[0] if rows else None

    @abc.abstractmethod
    def upsert(self, table: Table, values: dict[str, Any], keys: Sequence[str],
               update: dict[str, Any] | None = None) -> Executable:
        """A statement inserting ``values``, or on a clash of ``keys`` applying ``update``
        (column → value or SQL expression, e.g. ``table.c.balance + 10``); None updates nothing."""

    @abc.abstractmethod
    async def truncate(self, tables: Sequence[str]) -> None:
        """Empty the named tables (projection rebuilds)."""

    # -- timers ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def due_timers(self, now: float, limit: int = 100) -> list[Timer]:
        """Timers due at or before ``now``, earliest first."""

    @abc.abstractmethod
    async def next_due(self) -> float | None:
        """When the earliest timer is due, if any."""

    # -- subscriptions -----------------------------------------------------------------------
    @abc.abstractmethod
    async def checkpoint(self, subscription: str) -> int:
        """The last log position a subscription has dealt with."""

    @abc.abstractmethod
    async def reset_checkpoint(self, subscription: str) -> None:
        """Start a subscription again from the earliest event, forgetting its inbox."""

    @abc.abstractmethod
    async def in_inbox(self, subscription: str, event_id: str) -> bool:
        """True when the subscription has already handled this event."""

    @abc.abstractmethod
    async def handled(self, subscription: str, event_ids: Sequence[str]) -> set[str]:
        """Those of ``event_ids`` the subscription has already handled (one query for a batch)."""

    @abc.abstractmethod
    async def next_value(self, sequence: str) -> int:
        """The next number of a named counter (1, 2, 3, ... on a fresh store), taken at once in a transaction
        of its own, like a SQL sequence: a unit of work that takes one and then fails leaves a gap."""

    @abc.abstractmethod
    async def parked(self, subscription: str | None = None) -> list[Parked]:
        """Parked messages, oldest first."""

    @abc.abstractmethod
    async def request_retry(self, subscription: str, key: str | None = None) -> int:
        """Ask the subscription to try its parked messages again; how many were marked."""

    @abc.abstractmethod
    async def mark_parked_failed(self, parked_id: int, error: str, attempts: int) -> None:
        """Record another failed attempt of a parked message; its whole key waits again."""

    @abc.abstractmethod
    async def wait_for_append(self, timeout: float) -> None:
        """Return when new events were committed, or after ``timeout`` seconds."""

    @abc.abstractmethod
    async def drop_parked(self, subscription: str, key: str) -> int:
        """Drop the failing head message of a parked key; how many were dropped."""

    @abc.abstractmethod
    async def try_lease(self, name: str) -> Lease | None:
        """Take the lease ``name`` on this store's data unless another holder (another process, another
        replica of the service) has it: for work that one replica of a service must do, such as relaying
        its outbox. The lease ends with ``release`` or when its holder dies."""


class Lease(abc.ABC):
    """A lease taken by ``Store.try_lease``."""

    @abc.abstractmethod
    def held(self) -> bool:
        """False once the lease is lost (its connection broke) or released."""

    @abc.abstractmethod
    async def release(self) -> None:
        """Give the lease up."""
