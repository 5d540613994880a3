"""Gap-safe global order on PostgreSQL: a reader tailing the log never skips an event that commits late.

PostgreSQL hands sequence values out before commit, so a reader of ``position > last`` can read
position 11 while 10 is still uncommitted and never come back for it (DESIGN section 6). The first
test shows that hazard with a plain ``bigserial`` table; the others run the same choreography, then
many concurrent writers with randomly delayed commits, against ``PostgresStore`` and check that
every committed event is read exactly once, by every reader, in one order, with no holes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import text
from sqlalchemy.sql import Executable

from junction.errors import ConcurrencyError
from junction.events import Envelope
from junction.ids import Snowflake
from junction.postgres import PostgresStore
from junction.store import ANY_VERSION, Append, Batch, NewEvent

IDS = Snowflake(901)
WRITERS = 16  # tasks, each on a connection of its own, split over two stores (as two processes would be)
BATCHES = 15  # units of work per writer
READER_PAGES = (1, 7, 100)  # one reader per page size, each a store of its own
GATE = 4242  # the advisory lock that holds a writer's transaction open


def event(token: str, stream: str = "s") -> NewEvent:
    return NewEvent(id=IDS.next_int(), type="tests.gap.Written", schema_version=1, json=f'{{"token":"{token}"}}',
                    key=stream, occurred_at=time.time())


def gate(key: int = GATE) -> Executable:
    """A statement that waits, inside the open transaction, until the test releases ``key``."""
    return text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=key)


def pause(seconds: float) -> Executable:
    """A statement that sleeps inside the open transaction: the commit comes that much later."""
    return text("SELECT pg_sleep(:seconds)").bindparams(seconds=seconds)


def tokens(envelopes: list[Envelope]) -> list[str]:
    return [e.data["token"] for e in envelopes]


async def until(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the condition did not come true"
        await asyncio.sleep(0.005)


async def test_the_hazard_is_real_a_reader_by_sequence_skips_a_late_commit(postgres_database: str) -> None:
    slow, fast, reader = [await asyncpg.connect(postgres_database) for _ in range(3)]
    try:
        await slow.execute("CREATE TABLE naive (position bigserial PRIMARY KEY, token text NOT NULL)")
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute("INSERT INTO naive (token) VALUES ('slow')")  # takes position 1, commits later
        await fast.execute("INSERT INTO naive (token) VALUES ('fast')")  # takes 2 and commits at once
        query = "SELECT position, token FROM naive WHERE position > $1 ORDER BY position"
        first = await reader.fetch(query, 0)
        assert [tuple(r) for r in first] == [(2, "fast")]
        await transaction.commit()
        assert await reader.fetch(query, 2) == []  # tailing from 2: 'slow' is never read
        assert await reader.fetchval("SELECT count(*) FROM naive") == 2
    finally:
        for connection in (slow, fast, reader):
            await connection.close()


async def test_a_commit_that_lands_late_is_read_in_its_place_not_skipped(postgres_database: str) -> None:
    writer, reader = PostgresStore("svc", postgres_database), PostgresStore("svc", postgres_database)
    await writer.open()
    await reader.open()
    gatekeeper = await asyncpg.connect(postgres_database)
    try:
        await gatekeeper.execute("SELECT pg_advisory_lock($1)", GATE)
        slow = asyncio.create_task(writer.commit(Batch(
            appends=[Append("slow", 0, [event("slow-1", "slow"), event("slow-2", "slow")])], statements=[gate()])))

        async def slow_at_the_gate() -> bool:
            return bool(await gatekeeper.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))

        await until(slow_at_the_gate)  # its events are written, its transaction stays open
        fast = asyncio.create_task(writer.commit(Batch(appends=[Append("fast", 0, [event("fast-1", "fast")])])))

        async def fast_committed() -> bool:
            return bool(await gatekeeper.fetchval("SELECT count(*) FROM junction.events WHERE stream = 'fast'"))

        await until(fast_committed)
        # 'fast' is committed but has no position yet: it waits behind the older open transaction,
        # so no reader can read past the place where 'slow' will land
        assert await reader.read_log() == []
        assert await reader.head() == 0
        assert not fast.done()
        await gatekeeper.execute("SELECT pg_advisory_unlock($1)", GATE)
        slow_position, fast_position = await asyncio.wait_for(asyncio.gather(slow, fast), 10)
        log = await reader.read_log()
        assert tokens(log) == ["slow-1", "slow-2", "fast-1"]  # the transaction order, not the commit order
        assert [e.position for e in log] == [1, 2, 3]
        assert (slow_position, fast_position) == (2, 3)
        assert [e.position for e in await reader.read_stream("fast")] == [3]
    finally:
        await gatekeeper.close()
        await writer.close()
        await reader.close()


async def test_concurrent_writers_with_late_commits_every_event_read_once_in_one_order(postgres_database: str) -> None:
    dsn = postgres_database
    writers = [PostgresStore("svc", dsn, pool_size=WRITERS // 2) for _ in range(2)]
    readers = [PostgresStore("svc", dsn) for _ in READER_PAGES]
    for store in (*writers, *readers):
        await store.open()
    monitor = await asyncpg.connect(dsn)
    schedule = random.Random(20260101)  # the same delays every run
    committed: dict[str, int] = {}  # unit of work -> the position commit() answered (its last event)
    written: dict[str, list[str]] = {}  # unit of work -> its event tokens, in order
    conflicts = 0
    overtaken = 0  # monitor samples that found committed events waiting behind an older open transaction
    writing_done = asyncio.Event()

    async def write(writer: int) -> None:
        nonlocal conflicts
        store = writers[writer % 2]
        for number in range(BATCHES):
            unit = f"w{writer}-{number}"
            own = [f"{unit}/{i}" for i in range(schedule.randint(1, 3))]
            appends = [Append(f"writer-{writer}", ANY_VERSION, [event(t, f"writer-{writer}") for t in own])]
            if number % 4 == 0:  # a stream every writer appends to: versions decided under contention
                own.append(f"{unit}/shared")
                appends.append(Append("shared", ANY_VERSION, [event(own[-1], "shared")]))
            delay = schedule.choice((0.0, 0.0, 0.001, schedule.uniform(0.005, 0.04)))
            statements = [pause(delay)] if delay else []
            for _ in range(100):
                try:
                    committed[unit] = await store.commit(Batch(appends=appends, statements=statements))
                    break
                except ConcurrencyError:
                    conflicts += 1
            written[unit] = own

    async def tail(store: PostgresStore, page: int) -> list[Envelope]:
        seen: list[Envelope] = []
        while True:
            last = seen[-1].position if seen else 0
            chunk = await store.read_log(last, page)
            # every page continues exactly where the previous one ended: no hole, no repeat
            assert [e.position for e in chunk] == list(range(last + 1, last + 1 + len(chunk)))
            seen.extend(chunk)
            if not chunk:
                if writing_done.is_set() and last == await store.head():
                    return seen
                await store.wait_for_append(0.05)

    async def watch() -> None:
        nonlocal overtaken
        while not writing_done.is_set():
            overtaken += int(await monitor.fetchval(
                "SELECT count(*) > 0 FROM junction.events"
                " WHERE position IS NULL AND xid > pg_snapshot_xmin(pg_current_snapshot())"))
            await asyncio.sleep(0.002)

    try:
        started = time.monotonic()
        tails = [asyncio.create_task(tail(store, page)) for store, page in zip(readers, READER_PAGES, strict=True)]
        watching = asyncio.create_task(watch())
        await asyncio.gather(*(write(w) for w in range(WRITERS)))
        writing_done.set()
        seen_by = await asyncio.wait_for(asyncio.gather(*tails), 60)
        await watching
        elapsed = time.monotonic() - started

        final: list[Envelope] = []
        while chunk := await readers[0].read_log(final[-1].position if final else 0, 1000):
            final.extend(chunk)
        expected = [t for unit in written.values() for t in unit]
        assert len(committed) == WRITERS * BATCHES
        assert [e.position for e in final] == list(range(1, len(expected) + 1))  # 1..n, no hole
        assert Counter(tokens(final)) == Counter(expected)  # every committed event, exactly once
        assert all(count == 1 for count in Counter(tokens(final)).values())
        for seen in seen_by:  # every reader read the same events in the same order
            assert [(e.position, e.id) for e in seen] == [(e.position, e.id) for e in final]
        by_token = {e.data["token"]: e for e in final}
        for unit, position in committed.items():  # commit() answered the position of its last event
            assert by_token[written[unit][-1]].position == position
            positions = [by_token[t].position for t in written[unit]]
            assert positions == list(range(positions[0], positions[0] + len(positions)))  # a unit is contiguous
        for stream in {e.stream for e in final}:  # stream versions follow the log order
            versions = [e.version for e in final if e.stream == stream]
            assert versions == list(range(1, len(versions) + 1))
        assert overtaken > 0, "no commit landed behind an older open transaction: the test proved nothing"
        print(f"\n{len(final)} events from {WRITERS} writers in {elapsed:.1f} s; {conflicts} version conflicts;"
              f" {overtaken} samples saw commits waiting behind an older open transaction")
    finally:
        await monitor.close()
        for store in (*writers, *readers):
            await store.close()
