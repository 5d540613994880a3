"""SQLite store: one file per service, WAL, every unit of work committed on the event-loop thread.

Why not aiosqlite: each await is a thread hop, which the design notes measured at 4-7x below
what the disk allows; a short commit run inline on the loop thread reached 0.87x of raw
``sqlite3``. A whole unit of work is therefore one synchronous call with no await inside, so
transactions never span network I/O and never interleave. SQLite serialises writers anyway;
positions are rowids assigned inside the write transaction, so commit order is log order and
readers cannot see a gap.

The service's own tables are SQLAlchemy Core tables executed through the same connection, in the
same transaction as the events.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from sqlalchemy import MetaData, Table, create_engine, event, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable

from junction.errors import ConcurrencyError, StoreError
from junction.events import Envelope, dumps
from junction.ids import encode
from junction.signal import Signal
from junction.store import (
    ANY_VERSION,
    ROW_STATEMENTS_KEPT,
    Batch,
    Lease,
    Parked,
    RowWrite,
    Snapshot,
    Store,
    Timer,
    row_statement,
    runs,
)

# cache_size: up to 64 MiB of pages per store (SQLite's default is 2 MiB), taken only as a store grows: a
# projection over a million rows replays about 30 % faster when its indexes stay in memory.
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000",
           "PRAGMA cache_size=-65536", "PRAGMA foreign_keys=ON")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    id INTEGER NOT NULL,
    stream TEXT NOT NULL,
    version INTEGER NOT NULL,
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    occurred_at REAL NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    causation_id TEXT,
    correlation_id TEXT,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream TEXT PRIMARY KEY, version INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, due REAL NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_due ON timers (due);
CREATE TABLE IF NOT EXISTS checkpoints (subscription TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS inbox (
    subscription TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (subscription, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription TEXT NOT NULL,
    key TEXT NOT NULL,
    envelope TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    parked_at REAL NOT NULL,
    retry_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS parked_key ON parked (subscription, key, id);
"""

EVENT_COLUMNS = (
    "position, id, stream, version, type, key, occurred_at, schema_version, data, causation_id, correlation_id"
)
INSERT_EVENT = (
    "INSERT INTO events (id, stream, version, type, key, occurred_at, schema_version, data,"
    " causation_id, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def envelope_from_row(row: Sequence[Any], source: str) -> Envelope:
    """An Envelope from an ``events`` row selected as EVENT_COLUMNS."""
    return Envelope(
        position=row[0], id=encode(row[1]), stream=row[2], version=row[3], type=row[4], key=row[5],
        occurred_at=datetime.fromtimestamp(row[6], UTC), schema_version=row[7], data=json.loads(row[8]),
        causation_id=row[9], correlation_id=row[10], source=source,
    )


def envelope_to_json(envelope: Envelope) -> str:
    """Serialise an envelope for the parked table."""
    return dumps(envelope.to_json())


def envelope_from_json(text_: str) -> Envelope:
    """The inverse of envelope_to_json."""
    raw = json.loads(text_)
    return Envelope.from_json(raw)


_UNKNOWN: Any = object()
# row-write statement -> (its SQL, its parameters' names in order), or None when SQLAlchemy must bind its values
PlainSql = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...]]
_PLAIN_SQL: dict[Executable, PlainSql | None] = {}


def _plain_sql(statement: Executable, write: RowWrite, conn: Connection) -> PlainSql | None:
    """The SQLite SQL of a row-write statement, its parameters' names in order and their types' conversions
    (SQLAlchemy's bind processors, applied as it applies them), when every parameter is one of the row's (no
    column default filled in by SQLAlchemy)."""
    compiled = statement.compile(dialect=conn.dialect)  # type: ignore[attr-defined]
    if compiled.positiontup is None or not set(compiled.positiontup) <= set(write.parameters()):
        return None
    names = tuple(compiled.positiontup)
    processors = compiled._bind_processors
    return compiled.string, names, tuple(processors.get(name) for name in names)


class _FileLease(Lease):
    """A lease held as an exclusive lock on an open file."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle: BinaryIO | None = handle

    def held(self) -> bool:
        return self._handle is not None

    async def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class SqliteStore(Store):
    """A service store in one SQLite file."""

    def __init__(self, service: str, path: Path | str, metadata: MetaData | None = None) -> None:
        super().__init__(service, metadata)
        self.path = Path(path)
        self._conn: Connection | None = None
        self._raw: sqlite3.Connection | None = None
        self._appended = Signal()

    # -- life cycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            f"sqlite:///{self.path}", poolclass=StaticPool,
            connect_args={"isolation_level": None, "check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection: Any, _record: Any) -> None:
            for pragma in PRAGMAS:
                dbapi_connection.execute(pragma)

        self._conn = engine.connect()
        driver = self._conn.connection.driver_connection
        if not isinstance(driver, sqlite3.Connection):
            raise StoreError("the SQLite store needs the sqlite3 driver")
        self._raw = driver
        driver.executescript(SCHEMA)
        self.metadata.create_all(self._conn)
        self._conn.commit()

    async def close(self) -> None:
        if self._conn is not None:
            engine = self._conn.engine
            self._conn.close()
            engine.dispose()
            self._conn = self._raw = None

    @property
    def raw(self) -> sqlite3.Connection:
        """The driver connection (for benchmarks and the CLI)."""
        if self._raw is None:
            raise StoreError(f"store {self.service} is not open")
        return self._raw

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy connection."""
        if self._conn is None:
            raise StoreError(f"store {self.service} is not open")
        return self._conn

    # -- writes ----------------------------------------------------------------------------------
    async def commit(self, batch: Batch) -> int:
        if batch.is_empty():
            return 0
        raw, conn = self.raw, self.connection
        appended = 0
        raw.execute("BEGIN IMMEDIATE")
        try:
            if batch.appends:
                appended = self._append(batch)
            for snap in batch.snapshots:
                raw.execute(
                    "INSERT OR REPLACE INTO snapshots (stream, version, type, data) VALUES (?, ?, ?, ?)",
                    (snap.stream, snap.version, snap.type, dumps(snap.data)),
                )
            for index, write, rows in runs(batch.statements):
                try:
                    if rows is None:
                        batch.check_rows(index, conn.execute(cast(Executable, write)).rowcount)
                    else:
                        self._write_rows(cast(RowWrite, write), rows)
                except IntegrityError as error:
                    raise ConcurrencyError(f"a unique row ({error.orig})") from None
                except sqlite3.IntegrityError as error:
                    raise ConcurrencyError(f"a unique row ({error})") from None
            if batch.cancelled_timers:  # before inserts: a fired timer may be re-armed under its own id
                raw.executemany("DELETE FROM timers WHERE id = ?", [(t,) for t in batch.cancelled_timers])
            for timer in batch.timers:
                raw.execute(
                    "INSERT OR REPLACE INTO timers (id, name, due, payload) VALUES (?, ?, ?, ?)",
                    (timer.id, timer.name, timer.due, dumps(timer.payload)),
                )
            for subscription, event_id in batch.inbox:
                try:
                    raw.execute("INSERT INTO inbox (subscription, event_id) VALUES (?, ?)",
                                (subscription, event_id))
                except sqlite3.IntegrityError:
                    raise ConcurrencyError(f"inbox of {subscription}: {event_id} already handled") from None
            if batch.checkpoint is not None:
                raw.execute(
                    "INSERT INTO checkpoints (subscription, position) VALUES (?, ?) ON CONFLICT (subscription)"
                    " DO UPDATE SET position = max(position, excluded.position)",
                    batch.checkpoint,
                )
            now = time.time()
            for subscription, key, envelope, failure, attempts in batch.park:
                raw.execute(
                    "INSERT INTO parked (subscription, key, envelope, error, attempts, parked_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (subscription, key, envelope_to_json(envelope), failure, attempts, now),
                )
            if batch.unpark:
                raw.executemany("DELETE FROM parked WHERE id = ?", [(i,) for i in batch.unpark])
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        finally:
            if conn.in_transaction():
                conn.rollback()
        if appended:
            self._appended.notify()
        return appended

    def _write_rows(self, write: RowWrite, rows: list[dict[str, Any]]) -> None:
        """Run a row-write statement over ``rows``: straight on the driver with the statement's SQL compiled once
        (each value converted as SQLAlchemy's bind processors would), else through SQLAlchemy."""
        statement = row_statement(sqlite_insert, write)
        plain = _PLAIN_SQL.get(statement, _UNKNOWN)
        if plain is _UNKNOWN:
            if len(_PLAIN_SQL) >= ROW_STATEMENTS_KEPT:
                _PLAIN_SQL.clear()
            plain = _PLAIN_SQL[statement] = _plain_sql(statement, write, self.connection)
        if plain is None:
            self.connection.execute(statement, rows)
            return
        sql, names, processors = plain
        if any(processors):
            self.raw.executemany(sql, [tuple(row[name] if convert is None else convert(row[name])
                                             for name, convert in zip(names, processors, strict=True))
                                       for row in rows])
        else:
            self.raw.executemany(sql, [tuple(row[name] for name in names) for row in rows])

    def _append(self, batch: Batch) -> int:
        """Insert every append of the batch; the position of the last one.

        Positions are rowids handed out inside the write lock, so they follow commit order.
        """
        raw = self.raw
        rows: list[tuple[Any, ...]] = []
        versions: dict[str, int] = {}  # several appends to one stream in a batch follow each other
        for append in batch.appends:
            version = append.expected_version
            if version == ANY_VERSION:
                version = versions[append.stream] if append.stream in versions else self._version(append.stream)
            elif version > 0 and append.stream not in versions and self._version(append.stream) != version:
                # the unique (stream, version) catches a stream that moved on; this catches one that is behind
                raise ConcurrencyError(f"stream {append.stream} is not at version {version}")
            for new in append.events:
                version += 1
                versions[append.stream] = version
                rows.append((new.id, append.stream, version, new.type, new.key, new.occurred_at,
                             new.schema_version, new.json, new.causation_id, new.correlation_id))
        if not rows:
            return 0
        try:
            if len(rows) == 1:
                return raw.execute(INSERT_EVENT, rows[0]).lastrowid or 0
            raw.executemany(INSERT_EVENT, rows)
        except sqlite3.IntegrityError:
            streams = ", ".join(a.stream for a in batch.appends)
            raise ConcurrencyError(f"stream {streams}") from None
        return int(raw.execute("SELECT last_insert_rowid()").fetchone()[0])

    def _version(self, stream: str) -> int:
        row = self.raw.execute("SELECT max(version) FROM events WHERE stream = ?", (stream,)).fetchone()
        return row[0] or 0

    # -- reads -----------------------------------------------------------------------------------
    async def read_stream(self, stream: str, after_version: int = 0) -> list[Envelope]:
        rows = self.raw.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE stream = ? AND version > ? ORDER BY version",
            (stream, after_version),
        ).fetchall()
        return [envelope_from_row(row, self.service) for row in rows]

    async def stream_version(self, stream: str) -> int:
        return self._version(stream)

    async def read_log(self, after: int = 0, limit: int = 500) -> list[Envelope]:
        rows = self.raw.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, limit)
        ).fetchall()
        return [envelope_from_row(row, self.service) for row in rows]

    async def head(self) -> int:
        row = self.raw.execute("SELECT max(position) FROM events").fetchone()
        return row[0] or 0

    async def wait_for_append(self, timeout: float) -> None:
        """Return when new events were committed by this process, or after ``timeout`` seconds."""
        await self._appended.wait(timeout)

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        row = self.raw.execute(
            "SELECT version, type, data FROM snapshots WHERE stream = ?", (stream,)
        ).fetchone()
        return Snapshot(stream, row[0], row[1], json.loads(row[2])) if row else None

    async def fetch_all(self, statement: Executable) -> Sequence[Any]:
        conn = self.connection
        try:
            return conn.execute(statement).mappings().all()
        finally:
            conn.rollback()

    def upsert(self, table: Table, values: dict[str, Any], keys: Sequence[str],
               update: dict[str, Any] | None = None) -> Executable:
        statement = sqlite_insert(table).values(**values)
        if not update:
            return statement.on_conflict_do_nothing(index_elements=list(keys))
        return statement.on_conflict_do_update(index_elements=list(keys), set_=update)

    async def truncate(self, tables: Sequence[str]) -> None:
        conn = self.connection
        with conn.begin():
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))

    # -- timers ----------------------------------------------------------------------------------
    async def due_timers(self, now: float, limit: int = 100) -> list[Timer]:
        rows = self.raw.execute(
            "SELECT id, name, due, payload FROM timers WHERE due <= ? ORDER BY due, id LIMIT ?", (now, limit)
        ).fetchall()
        return [Timer(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def next_due(self) -> float | None:
        row = self.raw.execute("SELECT min(due) FROM timers").fetchone()
        return row[0]

    async def timer(self, timer_id: str) -> Timer | None:
        """One timer by id."""
        r = self.raw.execute("SELECT id, name, due, payload FROM timers WHERE id = ?", (timer_id,)).fetchone()
        return Timer(r[0], r[1], r[2], json.loads(r[3])) if r else None

    # -- subscriptions ---------------------------------------------------------------------------
    async def checkpoint(self, subscription: str) -> int:
        row = self.raw.execute(
            "SELECT position FROM checkpoints WHERE subscription = ?", (subscription,)
        ).fetchone()
        return row[0] if row else 0

    async def reset_checkpoint(self, subscription: str) -> None:
        raw = self.raw
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("DELETE FROM checkpoints WHERE subscription = ?", (subscription,))
        raw.execute("DELETE FROM inbox WHERE subscription = ?", (subscription,))
        raw.execute("DELETE FROM parked WHERE subscription = ?", (subscription,))
        raw.execute("COMMIT")

    async def in_inbox(self, subscription: str, event_id: str) -> bool:
        row = self.raw.execute(
            "SELECT 1 FROM inbox WHERE subscription = ? AND event_id = ?", (subscription, event_id)
        ).fetchone()
        return row is not None

    async def handled(self, subscription: str, event_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        ids = list(event_ids)
        for start in range(0, len(ids), 500):  # far below SQLite's limit of bound parameters
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(row[0] for row in self.raw.execute(
                f"SELECT event_id FROM inbox WHERE subscription = ? AND event_id IN ({marks})", (subscription, *chunk)))
        return found

    async def next_value(self, sequence: str) -> int:
        row = self.raw.execute(  # one autocommitted statement: atomic, and never rolled back with a unit of work
            "INSERT INTO sequences (name, value) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value", (sequence,)).fetchone()
        return int(row[0])

    async def parked(self, subscription: str | None = None) -> list[Parked]:
        query = "SELECT id, subscription, key, envelope, error, attempts, parked_at, retry_requested FROM parked"
        args: tuple[Any, ...] = ()
        if subscription is not None:
            query += " WHERE subscription = ?"
            args = (subscription,)
        rows = self.raw.execute(query + " ORDER BY id", args).fetchall()
        return [Parked(r[0], r[1], r[2], envelope_from_json(r[3]), r[4], r[5], r[6], bool(r[7])) for r in rows]

    async def request_retry(self, subscription: str, key: str | None = None) -> int:
        query, args = "UPDATE parked SET retry_requested = 1 WHERE subscription = ?", [subscription]
        if key is not None:
            query += " AND key = ?"
            args.append(key)
        cursor = self.raw.execute(query, args)
        return cursor.rowcount

    async def mark_parked_failed(self, parked_id: int, error: str, attempts: int) -> None:
        raw = self.raw
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("UPDATE parked SET error = ?, attempts = attempts + ? WHERE id = ?", (error, attempts, parked_id))
        # the whole key waits again, behind its failing head
        raw.execute(
            "UPDATE parked SET retry_requested = 0 WHERE (subscription, key) = "
            "(SELECT subscription, key FROM parked WHERE id = ?)", (parked_id,))
        raw.execute("COMMIT")

    async def try_lease(self, name: str) -> Lease | None:
        # A lock file beside the database: the processes that may share an SQLite file are on one machine,
        # and the kernel releases the lock when its holder dies.
        path = self.path.with_name(f"{self.path.name}.lease-{hashlib.sha1(name.encode()).hexdigest()[:16]}")
        handle = path.open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return None
        return _FileLease(handle)

    async def drop_parked(self, subscription: str, key: str) -> int:
        raw = self.raw
        raw.execute("BEGIN IMMEDIATE")
        try:
            row = raw.execute(
                "SELECT min(id) FROM parked WHERE subscription = ? AND key = ?", (subscription, key)
            ).fetchone()
            dropped = 0
            if row[0] is not None:
                dropped = raw.execute("DELETE FROM parked WHERE id = ?", (row[0],)).rowcount
                # the messages that waited behind it may go now
                raw.execute("UPDATE parked SET retry_requested = 1 WHERE subscription = ? AND key = ?",
                            (subscription, key))
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        return dropped
