"""What only the PostgreSQL store has: a database per service under a runtime, versioned migrations,
LISTEN/NOTIFY wake-ups across processes, and its own schema beside the service's tables.

The toy system (``tests/unit/toy.py``: ``orders`` records ``OrderPlaced``, ``mailer`` sends a mail
per order and can be told to fail) runs on PostgreSQL through ``Runtime(..., store_factory=...)``:
each service in its own database, the mailer consuming the orders database's log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import make_url

from junction.clock import VirtualClock
from junction.errors import ConcurrencyError, StoreError
from junction.postgres import MIGRATIONS, PostgresStore, database_dsn, postgres_stores
from junction.runtime import Runtime
from junction.service import Service
from junction.store import Append, Batch, NewEvent, Store
from tests.contract.postgres_server import PostgresServer
from tests.unit import toy

FAST_RETRY, Killed = toy.FAST_RETRY, toy.Killed
MAILS = "handlers:orders"


class DiesBeforeCheckpoint(toy.DiesBeforeCheckpoint, PostgresStore):
    """A PostgreSQL store whose process dies saving a checkpoint."""


@pytest.fixture(autouse=True)
def healthy_mailer() -> Iterator[None]:
    toy.failing_customers.clear()
    yield
    toy.failing_customers.clear()


def toy_runtime(server: PostgresServer, database: str, data: Path, dying: bool = False) -> Runtime:
    """The toy system with each service in database ``<database>__<service>`` (created on first open)."""
    stores = postgres_stores(server.dsn, prefix=f"{make_url(database).database}__")

    def factory(service: Service, data_dir: Path) -> Store:
        store = stores(service, data_dir)
        if dying and service.name == "mailer":
            assert isinstance(store, PostgresStore)
            return DiesBeforeCheckpoint(store.service, store.dsn, store.metadata, create=True)
        return store

    return Runtime(toy.system(), data, clock=VirtualClock(), retry=FAST_RETRY, poll_interval=0.01,
                   store_factory=factory)


async def place(rt: Runtime, customer: str, seq: int) -> None:
    response = await rt.client("orders").post("/orders", json={"customer": customer, "seq": seq})
    assert response.status_code == 200, response.text


async def test_toy_system_on_postgres_subscriptions_parking_and_timers(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    toy.failing_customers.add("bob")
    first = toy_runtime(postgres_server, postgres_database, tmp_path)
    async with first:
        for seq in range(3):
            await place(first, "bob", seq)
            await place(first, "ann", seq)
        await first.settle()
        mailer = first.service("mailer")
        assert await toy.sent(mailer.uow()) == [("ann", 0), ("ann", 1), ("ann", 2)]
        parked = await mailer.store.parked(MAILS)
        assert [(p.key, p.envelope.data["seq"]) for p in parked] == [("bob", 0), ("bob", 1), ("bob", 2)]
        assert "mail server rejects bob" in (parked[0].error or "")

        toy.failing_customers.clear()
        await mailer.store.request_retry(MAILS, "bob")
        await first.settle()
        assert [m for m in await toy.sent(mailer.uow()) if m[0] == "bob"] == [("bob", 0), ("bob", 1), ("bob", 2)]
        assert await mailer.store.parked() == []

        orders = first.service("orders")
        uow = orders.uow()
        uow.schedule(first.clock.timestamp() + 3600, "reminder", {"customer": "dee"})
        await uow.commit()
        assert await orders.store.head() == 6

    second = toy_runtime(postgres_server, postgres_database, tmp_path)  # a restart: all of it was durable
    async with second:
        clock = second.clock
        assert isinstance(clock, VirtualClock)
        await second.settle()
        mailer = second.service("mailer")
        assert len(await toy.sent(mailer.uow())) == 6  # nothing handled twice after the restart
        await clock.advance(3599)
        assert ("dee", -1) not in await toy.sent(mailer.uow())
        await clock.advance(1)
        assert (await toy.sent(mailer.uow()))[-1] == ("dee", -1)  # the timer fired, its event was consumed
        assert await second.service("orders").store.next_due() is None
        assert await mailer.store.checkpoint(MAILS) == 7
        status = await second.status()
        assert status["services"]["mailer"]["consumers"][MAILS]["lag"] == 0


async def test_crash_between_handling_and_checkpoint_redelivers_once(
    postgres_server: PostgresServer, postgres_database: str, tmp_path: Path
) -> None:
    first = toy_runtime(postgres_server, postgres_database, tmp_path, dying=True)
    await first.start()
    await place(first, "ann", 1)
    with pytest.raises(Killed):
        await first._tasks["mailer/handlers:orders"]  # handled the event, then died saving the checkpoint
    assert await first.service("mailer").store.checkpoint(MAILS) == 0
    await first.crash()

    second = toy_runtime(postgres_server, postgres_database, tmp_path)
    async with second:
        await second.settle()
        mailer = second.service("mailer")
        assert await toy.sent(mailer.uow()) == [("ann", 1)]  # redelivered, and the inbox made it a no-op
        assert mailer.subscriptions[MAILS].handled == 0
        assert await mailer.store.checkpoint(MAILS) == 1


def new_event(token: str) -> NewEvent:
    return NewEvent(id=1, type="T", schema_version=1, json=f'{{"token":"{token}"}}', key="k", occurred_at=time.time())


async def test_wait_for_append_wakes_a_reader_in_another_process(postgres_database: str) -> None:
    reader, writer = PostgresStore("svc", postgres_database), PostgresStore("svc", postgres_database)
    await reader.open()
    await writer.open()
    try:
        await reader.wait_for_append(0.01)  # opens the LISTEN connection
        waiting = asyncio.create_task(reader.wait_for_append(30))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        began = time.monotonic()
        await writer.commit(Batch(appends=[Append("s", 0, [new_event("a")])]))  # shares no memory with reader
        await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - began < 10  # woken by NOTIFY, long before the timeout

        # a commit between a read and the wait is not missed: the wait returns at once
        assert [e.position for e in await reader.read_log()] == [1]
        await writer.commit(Batch(appends=[Append("s", 1, [new_event("b")])]))
        await asyncio.sleep(0.2)  # the notification arrives before the reader waits
        began = time.monotonic()
        await reader.wait_for_append(30)
        assert time.monotonic() - began < 10
    finally:
        await reader.close()
        await writer.close()


async def test_group_commit_falls_back_one_by_one_when_a_unit_conflicts(postgres_database: str) -> None:
    """Writers committing at once are committed as one group; one of them conflicts, so the group falls
    back to one by one: it alone fails, the others' events are committed, in log order."""
    store = PostgresStore("svc", postgres_database)
    await store.open()
    groups: list[int] = []
    commit_group = store._commit_group

    async def spy(group: list[Any]) -> None:
        groups.append(len(group))
        await commit_group(group)

    store._commit_group = spy  # type: ignore[method-assign]
    try:
        assert await store.commit(Batch(appends=[Append("x", 0, [new_event("x1")])])) == 1
        busy = [store.commit(Batch(appends=[Append(f"busy-{n}", 0, [new_event(f"b{n}")])])) for n in range(2)]
        loser = store.commit(Batch(appends=[Append("x", 0, [new_event("lost")])]))
        other = store.commit(Batch(appends=[Append("y", 0, [new_event("y1")])]))
        results = await asyncio.gather(*busy, loser, other, return_exceptions=True)
        assert groups == [4]  # a lone writer went inline; the loser and the others, as one group
        assert isinstance(results[2], ConcurrencyError)
        assert sorted(results[:2]) == [2, 3] and results[3] == 4  # type: ignore[type-var]
        log = await store.read_log()
        assert [e.position for e in log] == [1, 2, 3, 4]
        assert {(e.position, e.stream, e.data["token"]) for e in log} == {
            (1, "x", "x1"), (results[0], "busy-0", "b0"), (results[1], "busy-1", "b1"), (4, "y", "y1")}

        # without a conflict the group commits as one transaction: positions contiguous, in queue order
        batches = [store.commit(Batch(appends=[Append(f"z-{n}", 0, [new_event(f"z{n}")])])) for n in range(6)]
        assert sorted(await asyncio.gather(*batches)) == [5, 6, 7, 8, 9, 10]
        assert groups[1:] == [6]
        assert [e.position for e in await store.read_log()] == list(range(1, 11))
    finally:
        await store.close()


async def test_an_open_transaction_of_another_database_holds_no_answer_back(
    postgres_server: PostgresServer, postgres_database: str
) -> None:
    writer, reader = PostgresStore("svc", postgres_database), PostgresStore("svc", postgres_database)
    await writer.open()
    await reader.open()
    elsewhere = await asyncpg.connect(database_dsn(postgres_server.dsn, "postgres"))  # the same server
    try:
        async with elsewhere.transaction():
            await elsewhere.fetchval("SELECT pg_current_xact_id()")  # older than what follows, and open
            # xids are cluster-wide, so the cluster's watermark stays below that transaction; this
            # database's does not, and the commit is answered (and read) while it stays open
            position = await asyncio.wait_for(writer.commit(Batch(appends=[Append("s", 0, [new_event("a")])])), 30)
            assert position == 1
            assert [(e.position, e.data["token"]) for e in await reader.read_log()] == [(1, "a")]
            second = await asyncio.wait_for(writer.commit(Batch(appends=[Append("s", 1, [new_event("b")])])), 30)
            assert second == 2
            assert await reader.head() == 2
    finally:
        await elsewhere.close()
        await writer.close()
        await reader.close()


async def test_migrations_are_versioned_and_safe_under_concurrent_starts(postgres_server: PostgresServer) -> None:
    dsn = database_dsn(postgres_server.dsn, f"junction_test_migrations_{id(postgres_server)}")
    stores = [PostgresStore("svc", dsn, create=True) for _ in range(3)]
    try:
        await stores[0].open()  # creates the database
        await asyncio.gather(*(s.open() for s in stores[1:]))  # two more starts race: one migrates
        connection = await asyncpg.connect(dsn)
        try:
            rows = await connection.fetch("SELECT version, name FROM junction.schema_migrations ORDER BY version")
            assert [(r["version"], r["name"]) for r in rows] == [(m.version, m.name) for m in MIGRATIONS]
            await connection.execute("INSERT INTO junction.schema_migrations (version, name) VALUES (999, 'future')")
        finally:
            await connection.close()
        newer = PostgresStore("svc", dsn)
        with pytest.raises(StoreError, match="newer than this code"):
            await newer.open()  # a database migrated by newer code is not touched
    finally:
        for store in stores:
            await store.close()
        admin = await asyncpg.connect(postgres_server.dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(dsn).database}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_platform_tables_do_not_clash_with_a_service_table_of_the_same_name(postgres_database: str) -> None:
    metadata = MetaData()
    events = Table("events", metadata, Column("id", String, primary_key=True), Column("n", Integer))
    store = PostgresStore("svc", postgres_database, metadata)
    await store.open()
    try:
        position = await store.commit(Batch(appends=[Append("s", 0, [new_event("a")])],
                                            statements=[events.insert().values(id="x", n=1)]))
        assert position == 1
        assert [dict(r) for r in await store.fetch_all(select(events))] == [{"id": "x", "n": 1}]
        assert [e.data for e in await store.read_log()] == [{"token": "a"}]
    finally:
        await store.close()
