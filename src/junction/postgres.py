"""PostgreSQL store: one database per service, asyncpg on the hot paths, SQLAlchemy Core for service tables.

Drivers
    The platform's own statements (append, read the log, timers, inbox, checkpoints, parked rows) run
    as prepared statements on asyncpg connections of the store's own small pool (``Connections``:
    asyncpg's pool spent more per acquire and release than the server spends on an insert). Their
    plans are generic (``plan_cache_mode``): left to itself, PostgreSQL planned the append anew on
    every execution. The commonest unit of work, one event and nothing else, is one plain INSERT
    (``APPEND_SQL``) in autocommit; any other unit of work's platform writes are one call of a
    PL/pgSQL function (``junction.commit_batch``) taking arrays. One-event commits are group
    committed: those that arrive while one is in flight (or in the same turn of the event loop) go
    together as one ``commit_batch`` call - one round trip and one WAL flush for the group, every
    unit's version check enforced, and the units' events contiguous in the log, so each unit's
    position follows from the last one's; a lone one goes inline as ``APPEND_SQL``. When the group
    loses a race (a version conflict or a unique violation), its units are committed one by one, so
    only the loser fails. Either answers the log position
    when no older transaction is open (see below). The design notes measured four-round-trip
    transactions at a third of single-statement inserts. The event log itself is the outbox: there
    is no second table to write. The service's own tables are SQLAlchemy Core statements, which only
    SQLAlchemy executes faithfully (defaults, type processors, result mappings), so they go through
    an ``AsyncEngine`` with the asyncpg driver: a unit of work with statements is BEGIN,
    ``commit_batch``, its statements, COMMIT on one SQLAlchemy connection. Reads of service tables
    run in autocommit (no BEGIN/ROLLBACK round trips).

Gap-safe global order (the transaction-id watermark)
    A sequence would hand out positions before commit, so a reader tailing ``position > last`` can
    read 11 while 10 is still uncommitted and never see 10. Here an event is written *without* a
    position: each row carries its transaction's 64-bit id (``pg_current_xact_id()``) and its
    place in the transaction (``ord``), and the log order is ``(xid, ord)``. The watermark
    ``W = pg_snapshot_xmin(pg_current_snapshot())`` splits the log: every transaction below W has
    ended and none can start below it, so the committed rows below W are a stable prefix, and an
    event's position is simply its rank in that prefix. ``junction.seal`` writes the ranks down:
    under a transaction-scoped advisory lock (sealers take turns; writers never take it) it
    numbers the unnumbered rows with ``xid < W`` in ``(xid, ord)`` order after the highest
    position. Readers read numbered rows only (``read_log`` = ``position > after``), so:

    * nothing is skipped: a row that commits late has an xid at or above the watermark of every
      seal that ran before it committed, so it stays unnumbered until it is committed, and then
      gets a position above everything read so far;
    * positions are 1, 2, 3, ... without holes (only committed rows are numbered), strictly
      increase in read order, every reader sees the same order, and a unit of work's events are
      contiguous;
    * writers are not serialised: they insert and commit concurrently (group commit works); only
      the short numbering step is, and one seal covers every transaction ended by then.

    Because a position is a rank, it is known before it is written: the append computes its
    event's position in its own statement when no older transaction is running (none can start any
    more), and so does ``commit_batch``. Otherwise the writer waits, holding no connection, for an
    answer round: one read-only statement (``POSITIONS_SQL``), on a connection of the store's own,
    ranks every waiting writer's event whose older transactions have all ended. Rounds follow one
    another while writers wait, so the writers whose commits end during a round are answered
    together by the next; asking writer by writer, after every local commit, had cost more round
    trips than the commits themselves. A background task per store seals every few milliseconds
    while commits come (one round trip for all of them, then NOTIFY), and a reader whose page
    reaches the numbered end seals first, so it sees every event whose commit() answered;
    ``read_stream`` reports such not-yet-written ranks too. The numbering is a pure function of
    the committed rows, so a seal commits asynchronously (``synchronous_commit = off``): a seal
    lost in a crash is redone identically. Stream versions agree with the log order because every
    read that decides a version (``ANY_VERSION``, the check that the stream is not behind the
    expected version) happens before the first write, in a snapshot taken before the transaction
    had an xid: any transaction visible to it got its xid earlier, so it precedes this one. The
    cost is that a commit answers only once every *older* transaction that could still write here
    has ended. xids are cluster-wide and so is ``pg_snapshot_xmin``; but a transaction of another
    database can never write to this log, so when the cluster's watermark keeps writers waiting,
    the answer rounds and the background seal number what lies below this database's watermark
    (``junction.database_watermark``: the running xids that pg_stat_activity does not place in
    another database). Every service of a system shares one server, and a long transaction in one
    service's database no longer holds the others back; a long transaction in its own database
    delays answers and visibility - never correctness - so transactions stay short (they never
    wait on the network). Under concurrency this is most of what a commit costs beyond an insert:
    its answer waits for the older commits' WAL flushes and for an answer round.

Waking consumers
    Each seal that numbers rows sends ``NOTIFY junction_log``. ``wait_for_append`` listens on a
    dedicated connection (opened on first use), so consumers in other processes wake promptly; the
    timeout is the fallback. Commits in this process wake local waiters directly, and a wait right
    after a read that missed a wake-up returns at once.

Schema
    The platform tables live in the schema ``junction`` (so they never clash with a service's
    tables in ``public``), versioned by ``junction.schema_migrations`` and migrated on ``open`` under
    an advisory lock. Why not alembic: the platform schema is the same in every service database,
    ships inside the library and must be applied programmatically by whichever process opens a
    store, while the service tables are declared at run time (SQLAlchemy ``MetaData``, created with
    ``create_all``); alembic's script directory, ``env.py`` and per-application revision history
    fit an application that owns one schema, not a library stamping many databases. The runner
    below keeps what matters: ordered numbered migrations, each recorded, applied in one
    transaction, safe under concurrent starts, refusing a database newer than the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import structlog
from sqlalchemy import MetaData, Table, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql import Executable

from junction.errors import ConcurrencyError, StoreError
from junction.events import Envelope, dumps
from junction.signal import Signal
from junction.sqlite import envelope_from_json, envelope_from_row, envelope_to_json
from junction.store import Append, Batch, Lease, Parked, RowWrite, Snapshot, Store, Timer, row_statement, runs

if TYPE_CHECKING:
    from junction.service import Service

log = structlog.get_logger()

SEAL_LOCK = 7671458263584317294  # advisory lock keys: "junction" as a big-endian int64, and the next one
SCHEMA_LOCK = SEAL_LOCK + 1
CHANNEL = "junction_log"
# unique and exclusion violations, serialization failures (our stream-version check), deadlocks
CONFLICTS = {"23505", "23P01", "40001", "40P01"}
SEAL_PAUSE = 0.005  # seconds between background sealing rounds while commits keep coming
POSITION_PATIENCE = 0.001  # seconds before asking again for positions held back by a transaction elsewhere
MAX_PATIENCE = 0.05  # ... and at most this long, however long it holds them back
MIN_SERVER = 13  # pg_current_xact_id / pg_snapshot_xmin
GROUP_LANES = 1  # one-event commits in flight at once; those arriving meanwhile are committed together


@dataclass(frozen=True)
class Migration:
    """One numbered step of the platform schema."""

    version: int
    name: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "platform tables and the gap-safe log", f"""
CREATE TABLE junction.events (
    stream text NOT NULL,
    version integer NOT NULL,
    xid xid8 NOT NULL,             -- the writing transaction: the log order is (xid, ord)
    ord integer NOT NULL,          -- the event's place within its transaction
    position bigint,               -- NULL until junction.seal numbers it
    id bigint NOT NULL,
    type text NOT NULL,
    key text NOT NULL,
    occurred_at double precision NOT NULL,
    schema_version integer NOT NULL,
    data json NOT NULL,
    causation_id text,
    correlation_id text,
    PRIMARY KEY (stream, version)
);
CREATE UNIQUE INDEX events_position ON junction.events (position);
CREATE INDEX events_unsealed ON junction.events (xid, ord) WHERE position IS NULL;

CREATE TABLE junction.snapshots (
    stream text PRIMARY KEY, version integer NOT NULL, type text NOT NULL, data json NOT NULL
);
CREATE TABLE junction.timers (
    id text PRIMARY KEY, name text NOT NULL, due double precision NOT NULL, payload json NOT NULL
);
CREATE INDEX timers_due ON junction.timers (due, id);
CREATE TABLE junction.checkpoints (subscription text PRIMARY KEY, position bigint NOT NULL);
CREATE TABLE junction.inbox (
    subscription text NOT NULL, event_id text NOT NULL, PRIMARY KEY (subscription, event_id)
);
CREATE TABLE junction.parked (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription text NOT NULL,
    key text NOT NULL,
    envelope json NOT NULL,
    error text,
    attempts integer NOT NULL DEFAULT 0,
    parked_at double precision NOT NULL,
    retry_requested boolean NOT NULL DEFAULT false
);
CREATE INDEX parked_key ON junction.parked (subscription, key, id);

-- Everything a unit of work writes to the platform tables, in one call. The reads that decide
-- versions come first, before this transaction has an xid (see the module docstring).
CREATE FUNCTION junction.commit_batch(
    a_streams text[], a_expected integer[], a_counts integer[],
    e_ids bigint[], e_types text[], e_keys text[], e_occurred double precision[], e_schema integer[],
    e_data text[], e_causation text[], e_correlation text[],
    s_streams text[], s_versions integer[], s_types text[], s_data text[],
    t_cancelled text[], t_ids text[], t_names text[], t_due double precision[], t_payloads text[],
    i_subscriptions text[], i_event_ids text[],
    c_subscription text, c_position bigint,
    p_subscriptions text[], p_keys text[], p_envelopes text[], p_errors text[], p_attempts integer[],
    p_at double precision, u_ids bigint[],
    OUT out_xid bigint, OUT out_version integer, OUT out_position bigint
) LANGUAGE plpgsql AS $fn$
DECLARE
    seen_streams text[] := '{{}}';
    seen_versions integer[] := '{{}}';
    streams text[] := '{{}}';
    versions integer[] := '{{}}';
    at integer;
    v integer;
    stored integer;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(a_streams), 0) LOOP
        at := array_position(seen_streams, a_streams[i]);
        IF a_expected[i] = -1 THEN
            IF at IS NULL THEN
                SELECT coalesce(max(e.version), 0) INTO v FROM junction.events e WHERE e.stream = a_streams[i];
            ELSE
                v := seen_versions[at];
            END IF;
        ELSE
            v := a_expected[i];
            IF v > 0 AND at IS NULL THEN  -- the unique key catches a stream that moved on; this, one behind
                SELECT coalesce(max(e.version), 0) INTO stored FROM junction.events e WHERE e.stream = a_streams[i];
                IF stored <> v THEN
                    RAISE EXCEPTION 'stream % is at version %, not %', a_streams[i], stored, v
                        USING ERRCODE = 'serialization_failure';
                END IF;
            END IF;
        END IF;
        IF a_counts[i] > 0 THEN
            FOR j IN 1 .. a_counts[i] LOOP
                v := v + 1;
                streams := streams || a_streams[i];
                versions := versions || v;
            END LOOP;
            IF at IS NULL THEN
                seen_streams := seen_streams || a_streams[i];
                seen_versions := seen_versions || v;
            ELSE
                seen_versions[at] := v;
            END IF;
        END IF;
    END LOOP;

    IF cardinality(versions) > 0 THEN
        INSERT INTO junction.events (stream, version, xid, ord, id, type, key, occurred_at, schema_version, data,
                                     causation_id, correlation_id)
        SELECT u.stream, u.version, pg_current_xact_id(), u.ord, u.id, u.type, u.key, u.occurred_at,
               u.schema_version, u.data::json, u.causation_id, u.correlation_id
        FROM unnest(streams, versions, e_ids, e_types, e_keys, e_occurred, e_schema, e_data, e_causation,
                    e_correlation)
             WITH ORDINALITY AS u(stream, version, id, type, key, occurred_at, schema_version, data, causation_id,
                                  correlation_id, ord);
        out_xid := pg_current_xact_id()::text::bigint;
        out_version := versions[cardinality(versions)];
        -- In a snapshot taken now that this transaction has its xid: when no older transaction is
        -- running, none can start any more, and the last event's position is already fixed (its
        -- rank in (xid, ord) order), so the writer needs no second round trip to learn it.
        SELECT CASE WHEN pg_snapshot_xmin(pg_current_snapshot()) = pg_current_xact_id() THEN
                   (SELECT coalesce(max(p.position), 0) FROM junction.events p)
                   + (SELECT count(*) FROM junction.events u
                      WHERE u.position IS NULL AND (u.xid, u.ord) <= (pg_current_xact_id(), cardinality(versions)))
               END
          INTO out_position;
    END IF;
    IF cardinality(s_streams) > 0 THEN
        INSERT INTO junction.snapshots AS s (stream, version, type, data)
        SELECT u.stream, u.version, u.type, u.data::json FROM unnest(s_streams, s_versions, s_types, s_data)
            AS u(stream, version, type, data)
        ON CONFLICT (stream) DO UPDATE SET version = excluded.version, type = excluded.type, data = excluded.data;
    END IF;
    IF cardinality(t_cancelled) > 0 THEN  -- before the inserts: a fired timer may be re-armed under its id
        DELETE FROM junction.timers t WHERE t.id = ANY (t_cancelled);
    END IF;
    IF cardinality(t_ids) > 0 THEN
        INSERT INTO junction.timers AS t (id, name, due, payload)
        SELECT u.id, u.name, u.due, u.payload::json FROM unnest(t_ids, t_names, t_due, t_payloads)
            AS u(id, name, due, payload)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, due = excluded.due, payload = excluded.payload;
    END IF;
    IF cardinality(i_subscriptions) > 0 THEN
        INSERT INTO junction.inbox (subscription, event_id)
        SELECT u.subscription, u.event_id FROM unnest(i_subscriptions, i_event_ids) AS u(subscription, event_id);
    END IF;
    IF c_subscription IS NOT NULL THEN
        INSERT INTO junction.checkpoints AS c (subscription, position) VALUES (c_subscription, c_position)
        ON CONFLICT (subscription) DO UPDATE SET position = greatest(c.position, excluded.position);
    END IF;
    IF cardinality(p_subscriptions) > 0 THEN
        INSERT INTO junction.parked (subscription, key, envelope, error, attempts, parked_at)
        SELECT u.subscription, u.key, u.envelope::json, u.error, u.attempts, p_at
        FROM unnest(p_subscriptions, p_keys, p_envelopes, p_errors, p_attempts)
             WITH ORDINALITY AS u(subscription, key, envelope, error, attempts, n)
        ORDER BY u.n;
    END IF;
    IF cardinality(u_ids) > 0 THEN
        DELETE FROM junction.parked p WHERE p.id = ANY (u_ids);
    END IF;
END
$fn$;

-- Number the stable prefix of the log: the rows of transactions below the xmin watermark. Sealers
-- take turns (a transaction-scoped advisory lock; writers never take it). Answers the watermark:
-- every event of a transaction below it is numbered now.
CREATE FUNCTION junction.seal() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    watermark xid8;
    base bigint;
    sealed bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({SEAL_LOCK});
    watermark := pg_snapshot_xmin(pg_current_snapshot());
    IF NOT EXISTS (SELECT 1 FROM junction.events e WHERE e.position IS NULL AND e.xid < watermark) THEN
        RETURN watermark::text::bigint;
    END IF;
    -- positions are a function of the committed rows: a seal lost in a crash is redone identically
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT coalesce(max(e.position), 0) INTO base FROM junction.events e;
    UPDATE junction.events e SET position = base + r.n
    FROM (SELECT u.stream, u.version, row_number() OVER (ORDER BY u.xid, u.ord) AS n
          FROM junction.events u WHERE u.position IS NULL AND u.xid < watermark) r
    WHERE e.stream = r.stream AND e.version = r.version;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    PERFORM pg_notify('{CHANNEL}', (base + sealed)::text);
    RETURN watermark::text::bigint;
END
$fn$;

-- True when committed events wait to be numbered although nothing older is running any more.
CREATE FUNCTION junction.sealable() RETURNS boolean LANGUAGE sql STABLE AS $fn$
    SELECT EXISTS (SELECT 1 FROM junction.events e
                   WHERE e.position IS NULL AND e.xid < pg_snapshot_xmin(pg_current_snapshot()))
$fn$;

-- A writer's log position once its transaction committed; NULL while an older one is still open.
-- Read-only: once every older transaction has ended, the position is fixed - the rank of (xid, ord) -
-- whether a seal has written it yet or not, so writers never queue behind each other here.
CREATE FUNCTION junction.position_of(s text, v integer, x bigint, o integer) RETURNS bigint
LANGUAGE sql STABLE AS $fn$
    SELECT CASE WHEN pg_snapshot_xmin(pg_current_snapshot()) > x::text::xid8 THEN
               coalesce(e.position,
                        (SELECT coalesce(max(p.position), 0) FROM junction.events p)
                        + (SELECT count(*) FROM junction.events u
                           WHERE u.position IS NULL AND (u.xid, u.ord) <= (x::text::xid8, o)))
           END
    FROM junction.events e WHERE e.stream = s AND e.version = v
$fn$;

-- A page of the log after a position; at the end of what is numbered, numbers what has become stable.
CREATE FUNCTION junction.read_log(after bigint, page integer) RETURNS TABLE (
    r_position bigint, r_id bigint, r_stream text, r_version integer, r_type text, r_key text,
    r_occurred_at double precision, r_schema_version integer, r_data json, r_causation_id text,
    r_correlation_id text
) LANGUAGE plpgsql AS $fn$
BEGIN
    -- a page that would reach the end of what is numbered first numbers what has become stable, so a
    -- reader sees every event whose commit() has answered
    IF (SELECT count(*) FROM (SELECT 1 FROM junction.events e WHERE e.position > after LIMIT page) n) < page
       AND junction.sealable() THEN
        PERFORM junction.seal();
    END IF;
    RETURN QUERY
        SELECT e.position, e.id, e.stream, e.version, e.type, e.key, e.occurred_at, e.schema_version, e.data,
               e.causation_id, e.correlation_id
        FROM junction.events e WHERE e.position > after ORDER BY e.position LIMIT page;
END
$fn$;

CREATE FUNCTION junction.head() RETURNS bigint LANGUAGE plpgsql AS $fn$
BEGIN
    IF junction.sealable() THEN
        PERFORM junction.seal();
    END IF;
    RETURN (SELECT coalesce(max(e.position), 0) FROM junction.events e);
END
$fn$;

-- A stream's events; one whose place is fixed but not yet written gets its rank, one of a
-- transaction that still waits behind an older one reports 0.
CREATE FUNCTION junction.read_stream(s text, after integer) RETURNS TABLE (
    r_position bigint, r_id bigint, r_stream text, r_version integer, r_type text, r_key text,
    r_occurred_at double precision, r_schema_version integer, r_data json, r_causation_id text,
    r_correlation_id text
) LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(e.position,
                    CASE WHEN e.xid < pg_snapshot_xmin(pg_current_snapshot()) THEN
                        (SELECT coalesce(max(p.position), 0) FROM junction.events p)
                        + (SELECT count(*) FROM junction.events u
                           WHERE u.position IS NULL AND (u.xid, u.ord) <= (e.xid, e.ord))
                    END, 0),
           e.id, e.stream, e.version, e.type, e.key, e.occurred_at, e.schema_version, e.data, e.causation_id,
           e.correlation_id
    FROM junction.events e WHERE e.stream = s AND e.version > after ORDER BY e.version
$fn$;
"""),
    Migration(2, "a leaner seal; positions answered for all waiting writers at once", f"""
-- The same numbering in fewer statements: a round costs about as much as the commits it covers when
-- it numbers only a few of them, so each statement saved counts.
CREATE OR REPLACE FUNCTION junction.seal() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    watermark xid8;
    sealed bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({SEAL_LOCK});
    watermark := pg_snapshot_xmin(pg_current_snapshot());
    -- each statement here reads a snapshot taken after the lock: every earlier seal is visible
    UPDATE junction.events e SET position = r.base + r.n
    FROM (SELECT u.stream, u.version, row_number() OVER (ORDER BY u.xid, u.ord) AS n,
                 (SELECT coalesce(max(p.position), 0) FROM junction.events p) AS base
          FROM junction.events u WHERE u.position IS NULL AND u.xid < watermark) r
    WHERE e.stream = r.stream AND e.version = r.version;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    IF sealed > 0 THEN
        -- positions are a function of the committed rows: a seal lost in a crash is redone identically
        PERFORM set_config('synchronous_commit', 'off', true);
        PERFORM pg_notify('{CHANNEL}', '');
    END IF;
    RETURN watermark::text::bigint;
END
$fn$;

-- Writers no longer ask for their positions one by one (POSITIONS_SQL answers them all).
DROP FUNCTION junction.position_of(text, integer, bigint, integer);
"""),
    Migration(3, "a watermark of this database's own transactions", f"""
-- The oldest transaction that may still write to this database's log. xids are cluster-wide, so
-- pg_snapshot_xmin counts every database's transactions; but a transaction of another database can
-- never write here, so when a running xid is known to belong to one (pg_stat_activity), it does not
-- hold this log back. An xid whose database is not known (a prepared transaction, a session whose
-- details are hidden, one that ended since the snapshot) counts, as before.
CREATE FUNCTION junction.database_watermark() RETURNS xid8 LANGUAGE sql STABLE AS $fn$
    SELECT coalesce(min(r.x), pg_snapshot_xmax(pg_current_snapshot()))
    FROM pg_snapshot_xip(pg_current_snapshot()) AS r(x)
    WHERE NOT EXISTS (SELECT FROM pg_stat_activity a
                      WHERE a.backend_xid = r.x::xid AND a.datname IS DISTINCT FROM current_database())
$fn$;

-- The seal, below either watermark: the cluster's (cheap: what writers and readers check) or, when
-- that is held back by transactions of other databases, this database's.
DROP FUNCTION junction.seal();
CREATE FUNCTION junction.seal(this_database boolean DEFAULT false) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    watermark xid8;
    sealed bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({SEAL_LOCK});
    watermark := CASE WHEN this_database THEN junction.database_watermark()
                      ELSE pg_snapshot_xmin(pg_current_snapshot()) END;
    -- each statement here reads a snapshot taken after the lock: every earlier seal is visible
    UPDATE junction.events e SET position = r.base + r.n
    FROM (SELECT u.stream, u.version, row_number() OVER (ORDER BY u.xid, u.ord) AS n,
                 (SELECT coalesce(max(p.position), 0) FROM junction.events p) AS base
          FROM junction.events u WHERE u.position IS NULL AND u.xid < watermark) r
    WHERE e.stream = r.stream AND e.version = r.version;
    GET DIAGNOSTICS sealed = ROW_COUNT;
    IF sealed > 0 THEN
        -- positions are a function of the committed rows: a seal lost in a crash is redone identically
        PERFORM set_config('synchronous_commit', 'off', true);
        PERFORM pg_notify('{CHANNEL}', '');
    END IF;
    RETURN watermark::text::bigint;
END
$fn$;

-- A sealing round below this database's watermark, then the positions of the given events (NULL
-- for those still behind an older transaction of this database): for writers whose answer waits
-- on something that is not ending here. Readers then find those events numbered.
CREATE FUNCTION junction.seal_and_find(streams text[], versions integer[], OUT positions bigint[])
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM junction.seal(true);
    SELECT array_agg(e.position ORDER BY k.n) INTO positions
    FROM unnest(streams, versions) WITH ORDINALITY AS k(stream, version, n)
         LEFT JOIN junction.events e ON e.stream = k.stream AND e.version = k.version;
END
$fn$;
"""),
    Migration(4, "named counters (Store.next_value)", """
CREATE TABLE junction.sequences (name text PRIMARY KEY, value bigint NOT NULL);
"""),
)

COMMIT_ARGUMENTS = 31
COMMIT_SQL = "SELECT out_xid, out_version, out_position FROM junction.commit_batch({})".format(
    ", ".join(f"${n}" for n in range(1, COMMIT_ARGUMENTS + 1)))
COMMIT_TEXT = text("SELECT out_xid, out_version, out_position FROM junction.commit_batch({})".format(
    ", ".join(f":a{n}" for n in range(1, COMMIT_ARGUMENTS + 1))))
# The commonest unit of work - one event and nothing else - as one plain statement rather than a
# commit_batch call: the same checks, a fraction of the work. The stream's version is read in the
# statement's snapshot, taken before the transaction has an xid (see the module docstring); an expected
# version the stream is behind inserts nothing (no row comes back). When that snapshot shows no
# transaction running and no xid handed out before this one's, every older transaction has ended
# and the event's position is its rank already: everything numbered, the unnumbered rows of older
# transactions, then this one.
APPEND_SQL = """
INSERT INTO junction.events (stream, version, xid, ord, id, type, key, occurred_at, schema_version, data,
                             causation_id, correlation_id)
SELECT $1, v.version + 1, pg_current_xact_id(), 1, $3, $4, $5, $6, $7, $8::json, $9, $10
FROM (SELECT CASE WHEN $2 >= 0 THEN $2
                  ELSE (SELECT coalesce(max(e.version), 0) FROM junction.events e WHERE e.stream = $1) END
             AS version) v
WHERE $2 <= 0 OR EXISTS (SELECT FROM junction.events e WHERE e.stream = $1 AND e.version = $2)
RETURNING version AS out_version, xid::text::bigint AS out_xid,
    CASE WHEN pg_snapshot_xmin(pg_current_snapshot()) = xid THEN
        (SELECT coalesce(max(p.position), 0) FROM junction.events p)
        + (SELECT count(*) FROM junction.events u WHERE u.position IS NULL AND u.xid < pg_current_xact_id()) + 1
    END AS out_position
"""
# The log positions of committed events ((stream, version) pairs, NULL for one whose transaction
# still waits behind an older open one), read-only: a rank is fixed once every older transaction has
# ended, whether a seal has written it yet or not. One statement answers every waiting writer.
POSITIONS_SQL = """
WITH stable AS (
    SELECT pg_snapshot_xmin(pg_current_snapshot()) AS watermark,
           (SELECT coalesce(max(p.position), 0) FROM junction.events p) AS numbered
), ranked AS (
    SELECT u.stream, u.version, s.numbered + row_number() OVER (ORDER BY u.xid, u.ord) AS position
    FROM junction.events u, stable s WHERE u.position IS NULL AND u.xid < s.watermark
)
SELECT array_agg(coalesce(e.position, r.position) ORDER BY k.n)
FROM unnest($1::text[], $2::integer[]) WITH ORDINALITY AS k(stream, version, n)
     LEFT JOIN junction.events e ON e.stream = k.stream AND e.version = k.version
     LEFT JOIN ranked r ON r.stream = k.stream AND r.version = k.version
"""
SEAL_AND_FIND_SQL = "SELECT junction.seal_and_find($1, $2)"
PARKED_COLUMNS = "id, subscription, key, envelope, error, attempts, parked_at, retry_requested"


async def migrate(connection: asyncpg.Connection) -> int:
    """Bring the platform schema up to date; the version it is at."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await connection.execute(
            "CREATE SCHEMA IF NOT EXISTS junction;"
            " CREATE TABLE IF NOT EXISTS junction.schema_migrations ("
            "  version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {r[0] for r in await connection.fetch("SELECT version FROM junction.schema_migrations")}
        latest = MIGRATIONS[-1].version
        if applied and max(applied) > latest:
            raise StoreError(f"the database's junction schema is at version {max(applied)}, newer than this"
                             f" code's {latest}")
        for migration in MIGRATIONS:
            if migration.version not in applied:
                await connection.execute(migration.sql)
                await connection.execute("INSERT INTO junction.schema_migrations (version, name) VALUES ($1, $2)",
                                         migration.version, migration.name)
    return latest


def quote_identifier(name: str) -> str:
    """``name`` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def database_dsn(dsn: str, database: str) -> str:
    """``dsn`` pointed at another database on the same server."""
    return make_url(dsn).set(database=database).render_as_string(hide_password=False)


async def create_database(dsn: str) -> bool:
    """Create the database ``dsn`` names unless it exists (through the server's ``postgres`` database)."""
    name = make_url(dsn).database
    if not name:
        raise StoreError(f"no database named in {make_url(dsn).render_as_string()}")
    admin = await asyncpg.connect(database_dsn(dsn, "postgres"))
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            await admin.execute(f"CREATE DATABASE {quote_identifier(name)}")
            return True
        return False
    finally:
        await admin.close()


def _conflict(error: BaseException) -> ConcurrencyError | None:
    """The ConcurrencyError a driver error stands for, if it is a lost race."""
    state = getattr(error.orig, "sqlstate", None) if isinstance(error, DBAPIError) else getattr(error, "sqlstate", None)
    if state in CONFLICTS:
        detail = getattr(error.orig, "args", [str(error)])[0] if isinstance(error, DBAPIError) else str(error)
        return ConcurrencyError(str(detail).splitlines()[0])
    return None


class Connections:
    """The store's asyncpg connections: a small pool, made on demand up to ``size``.

    Not ``asyncpg.Pool``: its acquire and release cost more Python than the server spends on a
    one-row insert (a task and a shield per release, a timer per idle connection). Here a connection
    is handed from a release to the next waiter directly. A connection is closed rather than reused
    when it broke, a statement on it was interrupted (a cancelled task), or it was left inside a
    transaction; a statement the server refused leaves it as good as before.
    """

    def __init__(self, dsn: str, size: int, settings: dict[str, str]) -> None:
        self.dsn = dsn
        self.size = size
        self.settings = settings
        self._idle: list[asyncpg.Connection] = []
        self._open = 0  # connections made and not closed: idle, in use, or being made
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        """The rows of ``query``."""
        connection = await self._acquire()
        healthy = False
        try:
            rows = await connection.fetch(query, *args)
            healthy = True
            return rows
        except asyncpg.PostgresError:
            healthy = True
            raise
        finally:
            self._release(connection, healthy)

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """The first row of ``query`` (None if none)."""
        connection = await self._acquire()
        healthy = False
        try:
            row = await connection.fetchrow(query, *args)
            healthy = True
            return row
        except asyncpg.PostgresError:
            healthy = True
            raise
        finally:
            self._release(connection, healthy)

    async def fetchval(self, query: str, *args: Any) -> Any:
        """The first value of the first row of ``query``."""
        row = await self.fetchrow(query, *args)
        return None if row is None else row[0]

    async def execute(self, query: str, *args: Any) -> str:
        """Run ``query`` (several statements when there are no arguments); its status."""
        connection = await self._acquire()
        healthy = False
        try:
            status: str = await connection.execute(query, *args)
            healthy = True
            return status
        except asyncpg.PostgresError:
            healthy = True
            raise
        finally:
            self._release(connection, healthy)

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the pool for the block (for a transaction of several statements)."""
        connection = await self._acquire()
        healthy = False
        try:
            yield connection
            healthy = True
        except asyncpg.PostgresError:
            healthy = True
            raise
        finally:
            self._release(connection, healthy)

    async def close(self) -> None:
        """Close the idle connections; those in use are closed when released; waiters fail."""
        self._closed = True
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(StoreError("the store's connections are closed"))
        idle, self._idle = self._idle, []
        for connection in idle:
            self._open -= 1
            try:
                await connection.close(timeout=2)
            except Exception:  # closing is best effort: never leave a connection behind
                connection.terminate()

    async def _acquire(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise StoreError("the store's connections are closed")
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._open -= 1
            if self._open < self.size:
                self._open += 1
                try:
                    return await asyncpg.connect(self.dsn, server_settings=self.settings)
                except BaseException:
                    self._open -= 1
                    self._hand_over(None)  # a waiter may manage to connect where this failed
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._release(waiter.result(), True)  # handed over as the waiter gave up: pass it on
                raise
            if handed is not None:
                return handed
            # None: a connection was closed, so there is room to make one

    def _release(self, connection: asyncpg.Connection | None, healthy: bool) -> None:
        if connection is None:
            self._hand_over(None)
            return
        if not healthy or self._closed or connection.is_closed() or connection.is_in_transaction():
            self._open -= 1
            connection.terminate()
            self._hand_over(None)
            return
        self._hand_over(connection)

    def _hand_over(self, connection: asyncpg.Connection | None) -> None:
        """Give a free connection (or, None, room for a new one) to the first waiter, else keep it idle."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if connection is not None:
            self._idle.append(connection)


def _single_append(batch: Batch) -> Append | None:
    """The batch's only append when it is one event and the batch nothing else (``APPEND_SQL``'s case)."""
    if len(batch.appends) != 1 or len(batch.appends[0].events) != 1 or batch.statements or batch.snapshots:
        return None
    if batch.timers or batch.cancelled_timers or batch.checkpoint or batch.inbox or batch.park or batch.unpark:
        return None
    return batch.appends[0]


def _count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class _AdvisoryLease(Lease):
    """A lease held as an advisory lock of a connection kept open for it."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection: asyncpg.Connection | None = connection

    def held(self) -> bool:
        return self._connection is not None and not self._connection.is_closed()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close(timeout=5)


class PostgresStore(Store):
    """A service store in one PostgreSQL database (``dsn`` names it)."""

    def __init__(self, service: str, dsn: str, metadata: MetaData | None = None, *, create: bool = False,
                 pool_size: int = 10) -> None:
        super().__init__(service, metadata)
        self.dsn = dsn
        self.create = create  # create the database on open when it does not exist
        self.pool_size = pool_size
        self._pool: Connections | None = None
        self._engine: AsyncEngine | None = None
        self._autocommit: AsyncEngine | None = None
        self._listener: asyncpg.Connection | None = None
        self._listen_lock = asyncio.Lock()
        self._appended = Signal()  # the log grew
        self._ended = Signal()  # a transaction of this store ended (positions behind it may be fixed now)
        self._ended_count = 0  # how many have ended
        self._waiting: dict[tuple[str, int], asyncio.Future[int]] = {}  # (stream, version) of a last event
        self._answerer: asyncio.Task[None] | None = None
        self._answering: asyncpg.Connection | None = None  # the answerer's own: never queued behind writers
        self._sealer: asyncio.Task[None] | None = None
        self._seal_target = 0  # every transaction below this xid that this store committed ...
        self._sealed_below = 0  # ... is numbered once the watermark passed it
        self._generation = 0  # bumped whenever the log grew (a local commit or a NOTIFY)
        self._read_at: weakref.WeakKeyDictionary[asyncio.Task[Any], int] = weakref.WeakKeyDictionary()
        self._lanes = 0  # one-event commits in flight (inline or a group)
        self._queued: list[tuple[Append, asyncio.Future[Any]]] = []  # one-event commits waiting for a lane
        self._groups: set[asyncio.Task[None]] = set()

    # -- life cycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        if self.create:
            await create_database(self.dsn)
        settings = {"application_name": f"junction/{self.service}"[:63]}
        # The platform's statements are prepared once per connection and their best plans do not depend
        # on the parameters, but PostgreSQL, seeing that a custom plan of the append could fold its
        # CASEs, plans it anew on every execution: that made a one-event commit cost 1.3x an insert.
        pool = Connections(self.dsn, self.pool_size, {**settings, "plan_cache_mode": "force_generic_plan"})
        engine: AsyncEngine | None = None
        try:
            async with pool.acquire() as connection:
                major = connection.get_server_version().major
                if major < MIN_SERVER:
                    raise StoreError(f"PostgreSQL {major} is too old for the gap-safe log (needs {MIN_SERVER}+)")
                await migrate(connection)
            url = make_url(self.dsn).set(drivername="postgresql+asyncpg")
            engine = create_async_engine(url, pool_size=max(2, self.pool_size // 2), max_overflow=self.pool_size,
                                         connect_args={"server_settings": settings})
            async with engine.begin() as conn:  # service tables: created under the schema lock too
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
                await conn.run_sync(self.metadata.create_all)
        except BaseException:
            await pool.close()
            if engine is not None:
                await engine.dispose()
            raise
        self._pool, self._engine = pool, engine
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    async def close(self) -> None:
        sealer, self._sealer = self._sealer, None
        if sealer is not None:  # a round in flight may finish; what is left, the next reader numbers
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sealer, timeout=1.0)
        answerer, self._answerer = self._answerer, None
        if answerer is not None:
            answerer.cancel()
            with contextlib.suppress(BaseException):
                await answerer
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():  # committed, but the position can no longer be learnt here
            if not future.done():
                future.set_exception(StoreError(f"store {self.service} closed before a log position was known"))
        answering, self._answering = self._answering, None
        if answering is not None:
            answering.terminate()  # read-only: nothing to finish
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await listener.close(timeout=2)
            except Exception:  # closing is best effort: never leave a connection behind
                listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        engine, self._engine, self._autocommit = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    @property
    def pool(self) -> Connections:
        """The platform's connections (benchmarks and tools)."""
        if self._pool is None:
            raise StoreError(f"store {self.service} is not open")
        return self._pool

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine over the same database."""
        if self._engine is None:
            raise StoreError(f"store {self.service} is not open")
        return self._engine

    # -- writes ----------------------------------------------------------------------------------
    async def commit(self, batch: Batch) -> int:
        if batch.is_empty():
            return 0
        single = _single_append(batch)
        if single is not None:
            return await self._commit_single(single)
        last = next((a.stream for a in reversed(batch.appends) if a.events), None)
        try:
            if batch.statements:
                row = await self._commit_with_statements(self._arguments(batch), batch)
            else:
                try:
                    row = await self.pool.fetchrow(COMMIT_SQL, *self._arguments(batch))
                except asyncpg.PostgresError as error:
                    raise (_conflict(error) or error) from None
        finally:
            self._transaction_ended()  # whatever happened
        if last is None or row is None or row["out_xid"] is None:
            return 0
        return await self._answer(last, row)

    async def _answer(self, stream: str, row: Any, back: int = 0) -> int:
        """The log position of a committed transaction's event ``back`` places before its last one
        (``row``: its answer, the last event of ``stream``); a transaction's events are contiguous."""
        self._seal_soon(row["out_xid"])
        position = row["out_position"]
        if position is None:  # an older transaction was still open
            position = await self._position(stream, row["out_version"])
        self._grew()
        return int(position) - back

    async def _commit_single(self, append: Append) -> int:
        """One event and nothing else, with group commit: the commits that arrive while a lane is busy
        (or in the same turn of the event loop) go together, as one ``commit_batch`` call (one round
        trip, one WAL flush); a lone one goes inline as ``APPEND_SQL``, so a lone writer waits no longer."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((append, future))
        try:
            await asyncio.sleep(0)  # the writers woken with this one queue too
        except BaseException:
            future.cancel()
            raise
        if self._lanes < GROUP_LANES and len(self._queued) == 1 and self._queued[0][1] is future:
            self._queued.clear()  # alone: inline
            self._lanes += 1
            try:
                row = await self._append(append)
            finally:
                self._lanes -= 1
                self._transaction_ended()
                self._drain()
            return await self._answer(append.stream, row)
        self._drain()
        stream, row, back = await future
        return await self._answer(stream, row, back)

    def _drain(self) -> None:
        """Start committing the queued one-event commits as one group when a lane is free."""
        if self._lanes >= GROUP_LANES or not self._queued:
            return
        group, self._queued = [(a, f) for a, f in self._queued if not f.done()], []
        if group:
            self._lanes += 1
            task = asyncio.create_task(self._commit_group(group), name=f"junction/{self.service}/group-commit")
            self._groups.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self._groups.discard)

    async def _commit_group(self, group: list[tuple[Append, asyncio.Future[Any]]]) -> None:
        """Commit a group of one-event units in one transaction, each unit's version check enforced;
        when the group fails on a lost race, commit them one by one so that only the loser fails.
        Each future gets ``(stream, answer, back)`` for ``_answer``, or the unit's error."""
        try:
            if len(group) > 1:  # one transaction for all
                appends = [a for a, _ in group]
                try:
                    row = await self.pool.fetchrow(COMMIT_SQL, *self._arguments(Batch(appends=appends)))
                except asyncpg.PostgresError as error:
                    if _conflict(error) is None:
                        raise
                else:
                    for index, (_, future) in enumerate(group):
                        if not future.done():
                            future.set_result((appends[-1].stream, row, len(group) - 1 - index))
                    return
                self._transaction_ended()  # the failed group's xid held nothing back any more
            for append, future in group:  # one by one: only the unit that lost its race fails
                try:
                    row = await self._append(append)
                except BaseException as error:
                    if not future.done():
                        future.set_exception(error)
                    if not isinstance(error, Exception):
                        raise
                else:
                    if not future.done():
                        future.set_result((append.stream, row, 0))
                finally:
                    self._transaction_ended()
        except BaseException as error:
            for _, future in group:
                if not future.done():
                    future.set_exception(error if isinstance(error, Exception) else StoreError(repr(error)))
            if not isinstance(error, Exception):
                raise
        finally:
            self._lanes -= 1
            self._transaction_ended()
            self._drain()

    async def _append(self, append: Append) -> Any:
        """One event and nothing else: one statement (``APPEND_SQL``); its answer."""
        (event,) = append.events
        try:
            row = await self.pool.fetchrow(
                APPEND_SQL, append.stream, append.expected_version, event.id, event.type, event.key,
                event.occurred_at, event.schema_version, event.json, event.causation_id, event.correlation_id)
        except asyncpg.PostgresError as error:
            raise (_conflict(error) or error) from None
        if row is None:  # nothing inserted: the stream is behind the expected version
            stored = await self.stream_version(append.stream)
            raise ConcurrencyError(f"stream {append.stream} is at version {stored}, not {append.expected_version}")
        return row

    async def _commit_with_statements(self, arguments: tuple[Any, ...], batch: Batch) -> Any:
        """BEGIN, the platform writes, the service's statements, COMMIT; ``commit_batch``'s answer."""
        parameters = {f"a{n}": value for n, value in enumerate(arguments, 1)}
        async with self.engine.connect() as conn:
            try:
                row = (await conn.execute(COMMIT_TEXT, parameters)).mappings().one()
                for index, write, rows in runs(batch.statements):
                    if rows is None:  # ConditionFailed: rolled back
                        batch.check_rows(index, (await conn.execute(cast(Executable, write))).rowcount)
                    else:
                        await conn.execute(row_statement(postgresql_insert, cast(RowWrite, write)), rows)
                await conn.commit()
            except DBAPIError as error:
                conflict = _conflict(error)
                if conflict is not None:
                    raise conflict from None
                raise
        return row

    async def _position(self, stream: str, version: int) -> int:
        """The log position of a committed event, known once every older transaction has ended: one
        read-only round trip answers every writer waiting by then (asking writer by writer cost more
        than the commits themselves), on a connection of its own, so never queued behind writers."""
        key = (stream, version)
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
        if self._answerer is None or self._answerer.done():
            self._answerer = asyncio.create_task(self._answer_rounds(), name=f"junction/{self.service}/positions")
        try:
            return await future
        finally:
            if future.cancelled():
                self._waiting.pop(key, None)

    async def _answer_rounds(self) -> None:
        """Answer waiting writers until none is left, one round at a time: the writers whose commits end
        while a round is out are answered together by the next. A round starts at once when a
        transaction of this store ended since the last one began (it may have been the older one holding
        the rest back). When none did, what is left waits on a transaction elsewhere: the rounds look
        again less and less often, and seal below this database's watermark, so that transactions of
        other databases on the same server hold nothing back."""
        patience, retry, ended, since = POSITION_PATIENCE, POSITION_PATIENCE, -1, time.monotonic()
        while self._pool is not None and self._waiting:
            held = self._ended_count == ended
            if held:
                await self._ended.wait(patience)
                patience = min(patience * 2, MAX_PATIENCE)
            else:
                patience = POSITION_PATIENCE
            ended = self._ended_count
            keys = list(self._waiting)
            try:
                positions = await self._positions(keys, seal=held)
            except Exception as error:  # the commits are done: their writers must get an answer, so go on
                log.warning("finding log positions failed; trying again", service=self.service, error=repr(error),
                            retry_in=retry)
                await asyncio.sleep(retry)
                retry = min(retry * 2, 1.0)
                continue
            retry = POSITION_PATIENCE
            answered = 0
            for key, position in zip(keys, positions or (), strict=False):
                if position is None:
                    continue
                future = self._waiting.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(int(position))
                    answered += 1
            if answered or not self._waiting:
                since = time.monotonic()
            elif time.monotonic() - since > 5:
                since = time.monotonic()
                log.warning("log positions wait on an older open transaction", service=self.service,
                            writers=len(self._waiting))

    async def _positions(self, keys: list[tuple[str, int]], seal: bool = False) -> list[int | None] | None:
        """The positions of ``keys`` (None: not yet) on the answerer's connection (made on first use, again
        after a failure): ``POSITIONS_SQL``, read-only; or, with ``seal``, ``SEAL_AND_FIND_SQL``."""
        connection = self._answering
        if connection is None or connection.is_closed():
            connection = self._answering = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                "application_name": f"junction/{self.service}/positions"[:63],
                # its plan does not depend on the keys: planning it anew each time (what PostgreSQL
                # chooses by itself here) cost twice as much as running it
                "plan_cache_mode": "force_generic_plan"})
        try:
            positions: list[int | None] | None = await connection.fetchval(
                SEAL_AND_FIND_SQL if seal else POSITIONS_SQL, [k[0] for k in keys], [k[1] for k in keys])
        except BaseException as error:
            if not isinstance(error, asyncpg.PostgresError):  # broken or interrupted: start afresh next time
                self._answering = None
                connection.terminate()
            raise
        return positions

    def _seal_soon(self, xid: int) -> None:
        """Number the new events in the background (and NOTIFY other processes), off the commit's path:
        one sealing round trip covers every commit made before it; rounds go on until everything this
        store committed is numbered (an older open transaction anywhere in the cluster can hold that back)."""
        self._seal_target = max(self._seal_target, xid + 1)
        if self._sealer is None or self._sealer.done():
            self._sealer = asyncio.create_task(self._seal_rounds(), name=f"junction/{self.service}/seal")

    async def _seal_rounds(self) -> None:
        pause, this_database = SEAL_PAUSE, False
        while self._pool is not None and self._sealed_below < self._seal_target:
            # let commits gather so that one round numbers them all: a round costs about as much as a
            # commit, and readers seal for themselves what they need sooner
            await asyncio.sleep(pause)
            if self._pool is None:
                return
            try:
                watermark = await self._pool.fetchval("SELECT junction.seal($1)", this_database)
                self._transaction_ended()  # the seal's own xid held younger writers' positions back
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, StoreError) as error:
                log.warning("sealing the log failed; readers will do it", service=self.service, error=str(error))
                return
            # when an older transaction holds the numbering back (the watermark did not move), look again
            # less and less often, and from then on below this database's watermark (other databases'
            # transactions do not count there); while it moves, commits made meanwhile are what is left
            moved = int(watermark) > self._sealed_below
            self._sealed_below = max(self._sealed_below, int(watermark))
            pause = SEAL_PAUSE if moved else min(pause * 2, MAX_PATIENCE)
            this_database = this_database or not moved

    def _transaction_ended(self) -> None:
        """A transaction of this store ended: positions it held back may be known now."""
        self._ended_count += 1
        self._ended.notify()

    def _grew(self) -> None:
        self._generation += 1
        self._appended.notify()

    @staticmethod
    def _arguments(batch: Batch) -> tuple[Any, ...]:
        """The arguments of ``junction.commit_batch`` for a batch."""
        events = [e for a in batch.appends for e in a.events]
        snapshots = list({s.stream: s for s in batch.snapshots}.values())  # the last of a stream wins
        timers = list({t.id: t for t in batch.timers}.values())
        subscription, position = batch.checkpoint if batch.checkpoint is not None else (None, 0)
        return (
            [a.stream for a in batch.appends], [a.expected_version for a in batch.appends],
            [len(a.events) for a in batch.appends],
            [e.id for e in events], [e.type for e in events], [e.key for e in events],
            [e.occurred_at for e in events], [e.schema_version for e in events], [e.json for e in events],
            [e.causation_id for e in events], [e.correlation_id for e in events],
            [s.stream for s in snapshots], [s.version for s in snapshots], [s.type for s in snapshots],
            [dumps(s.data) for s in snapshots],
            list(batch.cancelled_timers), [t.id for t in timers], [t.name for t in timers], [t.due for t in timers],
            [dumps(t.payload) for t in timers],
            [i[0] for i in batch.inbox], [i[1] for i in batch.inbox],
            subscription, position,
            [p[0] for p in batch.park], [p[1] for p in batch.park], [envelope_to_json(p[2]) for p in batch.park],
            [p[3] for p in batch.park], [p[4] for p in batch.park], time.time(),
            list(batch.unpark),
        )

    # -- reads -----------------------------------------------------------------------------------
    async def read_stream(self, stream: str, after_version: int = 0) -> list[Envelope]:
        """The stream's committed events; one whose transaction still waits behind an older open
        transaction has no log position yet and reports 0."""
        rows = await self.pool.fetch("SELECT * FROM junction.read_stream($1, $2)", stream, after_version)
        return [envelope_from_row(row, self.service) for row in rows]

    async def stream_version(self, stream: str) -> int:
        version = await self.pool.fetchval(
            "SELECT coalesce(max(version), 0) FROM junction.events WHERE stream = $1", stream)
        return int(version)

    async def read_log(self, after: int = 0, limit: int = 500) -> list[Envelope]:
        task = asyncio.current_task()
        if task is not None:
            self._read_at[task] = self._generation
        try:
            rows = await self.pool.fetch("SELECT * FROM junction.read_log($1, $2)", after, limit)
        finally:
            self._transaction_ended()  # it may have sealed, in a transaction with an xid of its own
        return [envelope_from_row(row, self.service) for row in rows]

    async def head(self) -> int:
        try:
            return int(await self.pool.fetchval("SELECT junction.head()"))
        finally:
            self._transaction_ended()  # it may have sealed, in a transaction with an xid of its own

    async def wait_for_append(self, timeout: float) -> None:
        """Return when events were committed (here, or by another process: NOTIFY), or after ``timeout``."""
        task = asyncio.current_task()
        if task is not None and self._read_at.get(task, self._generation) != self._generation:
            return  # the log grew since this task last read it
        if await self._listen():
            return  # nothing was listening before: whatever happened meanwhile, read again
        await self._appended.wait(timeout)

    async def _listen(self) -> bool:
        """Make sure the LISTEN connection is open; True when it had to be opened just now. A server
        that cannot be reached leaves it closed (the timeout keeps consumers polling)."""
        async with self._listen_lock:  # several consumers may wait on one store at once
            if self._listener is not None and not self._listener.is_closed():
                return False
            try:
                listener = await asyncpg.connect(self.dsn, timeout=5, server_settings={
                    "application_name": f"junction/{self.service}/listen"[:63]})
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            try:
                await listener.add_listener(CHANNEL, self._on_notify)
            except BaseException:
                listener.terminate()
                raise
            self._listener = listener
            return True

    def _on_notify(self, *_: object) -> None:
        self._grew()

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        row = await self.pool.fetchrow("SELECT version, type, data FROM junction.snapshots WHERE stream = $1", stream)
        return Snapshot(stream, row[0], row[1], json.loads(row[2])) if row else None

    # -- the service's own tables ----------------------------------------------------------------
    async def fetch_all(self, statement: Executable) -> Sequence[Any]:
        if self._autocommit is None:
            raise StoreError(f"store {self.service} is not open")
        async with self._autocommit.connect() as conn:
            return (await conn.execute(statement)).mappings().all()

    def upsert(self, table: Table, values: dict[str, Any], keys: Sequence[str],
               update: dict[str, Any] | None = None) -> Executable:
        statement = postgresql_insert(table).values(**values)
        if not update:
            return statement.on_conflict_do_nothing(index_elements=list(keys))
        return statement.on_conflict_do_update(index_elements=list(keys), set_=update)

    async def truncate(self, tables: Sequence[str]) -> None:
        if not tables:
            return
        async with self.engine.begin() as conn:
            await conn.execute(text("TRUNCATE " + ", ".join(quote_identifier(t) for t in tables)))

    # -- timers ----------------------------------------------------------------------------------
    async def due_timers(self, now: float, limit: int = 100) -> list[Timer]:
        rows = await self.pool.fetch(
            "SELECT id, name, due, payload FROM junction.timers WHERE due <= $1 ORDER BY due, id LIMIT $2", now, limit)
        return [Timer(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def next_due(self) -> float | None:
        due = await self.pool.fetchval("SELECT min(due) FROM junction.timers")
        return None if due is None else float(due)

    async def timer(self, timer_id: str) -> Timer | None:
        """One timer by id."""
        r = await self.pool.fetchrow("SELECT id, name, due, payload FROM junction.timers WHERE id = $1", timer_id)
        return Timer(r[0], r[1], r[2], json.loads(r[3])) if r else None

    # -- subscriptions ---------------------------------------------------------------------------
    async def checkpoint(self, subscription: str) -> int:
        position = await self.pool.fetchval(
            "SELECT position FROM junction.checkpoints WHERE subscription = $1", subscription)
        return int(position or 0)

    async def reset_checkpoint(self, subscription: str) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            for table in ("checkpoints", "inbox", "parked"):
                await connection.execute(f"DELETE FROM junction.{table} WHERE subscription = $1", subscription)

    async def in_inbox(self, subscription: str, event_id: str) -> bool:
        found = await self.pool.fetchval(
            "SELECT 1 FROM junction.inbox WHERE subscription = $1 AND event_id = $2", subscription, event_id)
        return found is not None

    async def handled(self, subscription: str, event_ids: Sequence[str]) -> set[str]:
        rows = await self.pool.fetch(
            "SELECT event_id FROM junction.inbox WHERE subscription = $1 AND event_id = ANY($2::text[])",
            subscription, list(event_ids))
        return {row[0] for row in rows}

    async def next_value(self, sequence: str) -> int:
        value = await self.pool.fetchval(
            "INSERT INTO junction.sequences (name, value) VALUES ($1, 1)"
            " ON CONFLICT (name) DO UPDATE SET value = junction.sequences.value + 1 RETURNING value", sequence)
        return int(value)

    async def parked(self, subscription: str | None = None) -> list[Parked]:
        if subscription is None:
            rows = await self.pool.fetch(f"SELECT {PARKED_COLUMNS} FROM junction.parked ORDER BY id")
        else:
            rows = await self.pool.fetch(
                f"SELECT {PARKED_COLUMNS} FROM junction.parked WHERE subscription = $1 ORDER BY id", subscription)
        return [Parked(r[0], r[1], r[2], envelope_from_json(r[3]), r[4], r[5], r[6], r[7]) for r in rows]

    async def request_retry(self, subscription: str, key: str | None = None) -> int:
        if key is None:
            status = await self.pool.execute(
                "UPDATE junction.parked SET retry_requested = true WHERE subscription = $1", subscription)
        else:
            status = await self.pool.execute(
                "UPDATE junction.parked SET retry_requested = true WHERE subscription = $1 AND key = $2",
                subscription, key)
        return _count(status)

    async def mark_parked_failed(self, parked_id: int, error: str, attempts: int) -> None:
        # one statement: the failed message's error and attempts, and its whole key waits again behind it
        await self.pool.execute(
            "UPDATE junction.parked p SET retry_requested = false,"
            " error = CASE WHEN p.id = $1 THEN $2 ELSE p.error END,"
            " attempts = CASE WHEN p.id = $1 THEN p.attempts + $3 ELSE p.attempts END"
            " FROM junction.parked head WHERE head.id = $1 AND p.subscription = head.subscription AND p.key = head.key",
            parked_id, error, attempts,
        )

    async def try_lease(self, name: str) -> Lease | None:
        # A session-level advisory lock on a connection of its own, per database: PostgreSQL releases it when
        # the connection ends, so a holder that dies (or loses its connection) gives the lease up.
        connection = await asyncpg.connect(self.dsn, timeout=10, server_settings={
            "application_name": f"junction/{self.service}/lease"[:63]})
        try:
            taken = await connection.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", name)
        except BaseException:
            connection.terminate()
            raise
        if not taken:
            await connection.close()
            return None
        return _AdvisoryLease(connection)

    async def drop_parked(self, subscription: str, key: str) -> int:
        async with self.pool.acquire() as connection, connection.transaction():
            head = await connection.fetchval(
                "SELECT id FROM junction.parked WHERE subscription = $1 AND key = $2 ORDER BY id LIMIT 1 FOR UPDATE",
                subscription, key)
            if head is None:
                return 0
            await connection.execute("DELETE FROM junction.parked WHERE id = $1", head)
            # the messages that waited behind it may go now
            await connection.execute(
                "UPDATE junction.parked SET retry_requested = true WHERE subscription = $1 AND key = $2",
                subscription, key)
            return 1


def postgres_stores(dsn: str, prefix: str = "", create: bool = True) -> Callable[[Service, Path], Store]:
    """A ``Runtime`` store factory: service ``s`` in database ``<prefix><s>`` on ``dsn``'s server, created
    when missing unless ``create`` is False (``-`` in service names becomes ``_``)."""

    def make(service: Service, data_dir: Path) -> Store:
        database = f"{prefix}{service.name}".replace("-", "_")
        return PostgresStore(service.name, database_dsn(dsn, database), service.metadata, create=create)

    return make
