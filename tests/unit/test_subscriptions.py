"""Consumers: effectively-once across a crash, per-key parking of poison messages, dlq retry/drop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, select

from junction.clock import VirtualClock
from junction.runtime import Runtime, System, sqlite_store
from junction.service import Service
from junction.sqlite import SqliteStore
from junction.store import Batch, Store
from junction.uow import UnitOfWork
from tests.unit import toy

FAST_RETRY, Killed = toy.FAST_RETRY, toy.Killed


class DiesBeforeCheckpoint(toy.DiesBeforeCheckpoint, SqliteStore):
    """A SQLite store whose process dies saving a checkpoint."""


@pytest.fixture(autouse=True)
def healthy_mailer() -> Iterator[None]:
    toy.failing_customers.clear()
    yield
    toy.failing_customers.clear()


def runtime(data: Path, **kwargs: object) -> Runtime:
    return Runtime(toy.system(), data, clock=VirtualClock(), retry=FAST_RETRY, poll_interval=0.01, **kwargs)  # type: ignore[arg-type]


async def place(rt: Runtime, customer: str, seq: int) -> None:
    response = await rt.client("orders").post("/orders", json={"customer": customer, "seq": seq})
    assert response.status_code == 200, response.text


async def test_crash_after_effect_before_checkpoint_redelivers_once(tmp_path: Path) -> None:
    def dying(service: Service, data: Path) -> Store:
        if service.name == "mailer":
            return DiesBeforeCheckpoint(service.name, data / "mailer.db", service.metadata)
        return sqlite_store(service, data)

    first = runtime(tmp_path, store_factory=dying)
    await first.start()
    await place(first, "ann", 1)
    worker = first.service("mailer").subscriptions["handlers:orders"]
    task = first._tasks["mailer/handlers:orders"]
    with pytest.raises(Killed):
        await task  # the consumer handled the event, then died saving its checkpoint
    assert worker.handled == 1
    assert await first.service("mailer").store.checkpoint("handlers:orders") == 0
    await first.crash()

    second = runtime(tmp_path)
    async with second:
        await second.settle()
        mailer = second.service("mailer")
        assert await toy.sent(mailer.uow()) == [("ann", 1)]  # redelivered, and the inbox made it a no-op
        assert mailer.subscriptions["handlers:orders"].handled == 0
        assert await mailer.store.checkpoint("handlers:orders") > 0


async def test_poison_parks_its_key_while_other_keys_go_on_then_retry_delivers_in_order(tmp_path: Path) -> None:
    toy.failing_customers.add("bob")
    async with runtime(tmp_path) as rt:
        for seq in range(3):
            await place(rt, "bob", seq)
            await place(rt, "ann", seq)
        await rt.settle()
        mailer = rt.service("mailer")
        assert await toy.sent(mailer.uow()) == [("ann", 0), ("ann", 1), ("ann", 2)]
        parked = await mailer.store.parked("handlers:orders")
        assert [(p.key, p.envelope.data["seq"]) for p in parked] == [("bob", 0), ("bob", 1), ("bob", 2)]
        assert "mail server rejects bob" in (parked[0].error or "")
        assert parked[1].error is None  # waiting behind the first, not failed itself

        await mailer.store.request_retry("handlers:orders", "bob")  # still failing: stays parked, in order
        await rt.settle()
        again = await mailer.store.parked("handlers:orders")
        assert [p.id for p in again] == [p.id for p in parked]
        assert again[0].attempts > parked[0].attempts and not again[0].retry_requested

        toy.failing_customers.clear()  # the mail server is fixed
        await place(rt, "bob", 3)  # arrives while bob is still parked: must wait behind the others
        await rt.settle()
        assert ("bob", 3) not in await toy.sent(mailer.uow())
        await mailer.store.request_retry("handlers:orders", "bob")
        await rt.settle()
        bob = [m for m in await toy.sent(mailer.uow()) if m[0] == "bob"]
        assert bob == [("bob", 0), ("bob", 1), ("bob", 2), ("bob", 3)]
        assert await mailer.store.parked() == []


async def test_drop_discards_only_the_failing_message(tmp_path: Path) -> None:
    toy.failing_customers.add("cy")
    async with runtime(tmp_path) as rt:
        await place(rt, "cy", 0)
        await rt.settle()
        toy.failing_customers.clear()
        await place(rt, "cy", 1)
        await rt.settle()
        mailer = rt.service("mailer")
        assert await mailer.store.drop_parked("handlers:orders", "cy") == 1
        await rt.settle()
        assert await toy.sent(mailer.uow()) == [("cy", 1)]
        assert await mailer.store.parked() == []


async def test_consumer_started_late_reads_from_the_earliest_event(tmp_path: Path) -> None:
    async with Runtime(toy.system(), tmp_path, clock=VirtualClock(), only=["orders"]) as orders_only:
        await place(orders_only, "early", 1)
    async with runtime(tmp_path) as rt:
        await rt.settle()
        assert await toy.sent(rt.service("mailer").uow()) == [("early", 1)]


async def test_timer_survives_a_restart_and_fires_by_the_platform_clock(tmp_path: Path) -> None:
    first = runtime(tmp_path)
    async with first:
        orders = first.service("orders")
        uow = orders.uow()
        uow.schedule(first.clock.timestamp() + 3600, "reminder", {"customer": "dee"})
        await uow.commit()
    second = runtime(tmp_path)
    async with second:
        clock = second.clock
        assert isinstance(clock, VirtualClock)
        await clock.advance(3599)
        assert await toy.sent(second.service("mailer").uow()) == []
        await clock.advance(1)
        assert await toy.sent(second.service("mailer").uow()) == [("dee", -1)]
        assert await second.service("orders").store.next_due() is None


# -- batched subscriptions: many events per transaction, one by one when a batch fails -------------------
batched = Service("batched", worker=13)
seen = batched.table("seen", Column("n", Integer, primary_key=True, autoincrement=True),
                     Column("customer", String, nullable=False), Column("seq", Integer, nullable=False))


@batched.on("orders", toy.OrderPlaced, batch=50)
async def note(event: toy.OrderPlaced, uow: UnitOfWork) -> None:
    if event.customer in toy.failing_customers:
        raise RuntimeError(f"cannot note {event.customer}")
    uow.execute(seen.insert().values(customer=event.customer, seq=event.seq))


class CountsCommits(SqliteStore):
    """A SQLite store that counts the transactions that carried inbox rows."""

    handler_commits = 0

    async def commit(self, batch: Batch) -> int:
        if batch.inbox:
            CountsCommits.handler_commits += 1
        return await super().commit(batch)


def batched_runtime(data: Path) -> Runtime:
    def stores(service: Service, directory: Path) -> Store:
        if service.name == "batched":
            return CountsCommits(service.name, directory / "batched.db", service.metadata)
        return sqlite_store(service, directory)

    return Runtime(System("batched-toy", [toy.orders, batched]), data, clock=VirtualClock(), retry=FAST_RETRY,
                   poll_interval=0.01, store_factory=stores)


async def test_a_batched_subscription_handles_many_events_per_transaction_exactly_once(tmp_path: Path) -> None:
    CountsCommits.handler_commits = 0
    async with batched_runtime(tmp_path) as rt:
        await rt.pause_consumers("batched")
        for seq in range(200):
            await place(rt, f"c{seq % 7}", seq)
    async with batched_runtime(tmp_path) as rt:  # a restart: the backlog is waiting
        await rt.settle()
        rows = await rt.service("batched").uow().fetch_all(select(seen).order_by(seen.c.n))
        assert [r["seq"] for r in rows] == list(range(200))  # each once, in log order
        assert CountsCommits.handler_commits <= 200 // 50 + 1


async def test_a_failing_event_sends_its_batch_one_by_one_and_parks_only_its_key(tmp_path: Path) -> None:
    toy.failing_customers.add("bob")
    async with batched_runtime(tmp_path) as rt:
        await rt.pause_consumers("batched")
        for seq in range(30):
            await place(rt, "bob" if seq in (10, 20) else f"c{seq % 3}", seq)
    async with batched_runtime(tmp_path) as rt:
        await rt.settle()
        service = rt.service("batched")
        rows = await service.uow().fetch_all(select(seen).order_by(seen.c.n))
        assert [r["seq"] for r in rows] == [s for s in range(30) if s not in (10, 20)]
        parked = await service.store.parked("handlers:orders")
        assert [(p.key, p.envelope.data["seq"]) for p in parked] == [("bob", 10), ("bob", 20)]
        toy.failing_customers.clear()
        await service.store.request_retry("handlers:orders", "bob")
        await rt.settle()
        rows = await service.uow().fetch_all(select(seen).order_by(seen.c.n))
        assert sorted(r["seq"] for r in rows) == list(range(30))
        assert await service.store.parked() == []
