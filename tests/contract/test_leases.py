"""Leases (``Store.try_lease``) and the one-relay-per-service rule they make, on every store adapter.

Two stores over the same data stand for two replicas of a service (two processes, two pods).
"""

from __future__ import annotations

import asyncio

from junction.events import Envelope
from junction.outbox import OutboxRelay
from junction.store import Batch, Store
from tests.contract.conftest import StoreFactory
from tests.contract.test_store import append


async def test_a_lease_has_one_holder_until_it_is_released(store: Store, store_factory: StoreFactory) -> None:
    replica = store_factory(store.service)
    await replica.open()
    try:
        lease = await store.try_lease("relay:relay")
        assert lease is not None and lease.held()
        assert await replica.try_lease("relay:relay") is None  # held elsewhere
        other = await replica.try_lease("mail:sender")  # another name is another lease
        assert other is not None
        await other.release()
        await lease.release()
        assert not lease.held()
        taken = await replica.try_lease("relay:relay")  # released: the other replica takes it
        assert taken is not None
        assert await store.try_lease("relay:relay") is None
        await taken.release()
    finally:
        await replica.close()


class Recording(OutboxRelay):
    """A relay whose broker is a list (the lease and checkpoint logic is what is under test here)."""

    def __init__(self, store: Store, sent: list[tuple[str, int]], name: str) -> None:
        super().__init__(store, poll_interval=0.01)
        self.standby_interval = 0.01
        self.sent, self.name = sent, name

    async def publish(self, envelopes: list[Envelope]) -> None:
        self.sent.extend((self.name, e.position) for e in envelopes)

    async def close(self) -> None:
        pass


async def until(condition: object, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds: the relays run in real time."""
    try:
        async with asyncio.timeout(20):
            while not condition():  # type: ignore[operator]
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not reached in 20 s: {what}") from None


async def test_one_replica_relays_and_another_takes_over_from_the_checkpoint(
        store: Store, store_factory: StoreFactory) -> None:
    replica = store_factory(store.service)
    await replica.open()
    sent: list[tuple[str, int]] = []
    first, second = Recording(store, sent, "first"), Recording(replica, sent, "second")
    tasks = [asyncio.create_task(first.run())]
    try:
        await until(lambda: first.leased, "the first relay holds the lease")
        tasks.append(asyncio.create_task(second.run()))
        await until(lambda: second.standing_by, f"the second stands by ({second.leased=}, {first.leased=})")
        await store.commit(Batch(appends=[append("tally-a", 0, "a1", "a2", "a3")]))
        await until(lambda: first.position == 3, "three events relayed and checkpointed")
        assert sent == [("first", 1), ("first", 2), ("first", 3)]  # one relay published them, in order
        tasks[0].cancel()  # the first replica stops (its lease goes with it)
        await asyncio.gather(tasks[0], return_exceptions=True)
        await store.commit(Batch(appends=[append("tally-b", 0, "b1", "b2")]))
        await until(lambda: second.position == 5, "the rest relayed by the other replica")
        assert sent[3:] == [("second", 4), ("second", 5)]  # from the checkpoint: nothing again, nothing lost
        assert second.leased and not second.standing_by
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await replica.close()
