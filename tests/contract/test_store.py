"""The store port's contract: every adapter (SQLite now, PostgreSQL later) must pass all of it.

Only the port (``junction.store.Store``) is used here, never an adapter's extras, so the same
tests judge every adapter. Durability is proved by closing the store and opening a new one over
the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally_
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from junction.aggregate import Aggregate
from junction.clock import VirtualClock
from junction.errors import ConcurrencyError, JunctionError
from junction.events import Envelope, Event
from junction.ids import Snowflake, encode
from junction.store import ANY_VERSION, Append, Batch, NewEvent, RowWrite, Snapshot, Store, Timer, Write
from junction.uow import UnitOfWork, run_with_retries
from tests.contract.conftest import ACCOUNTS, StoreFactory

IDS = Snowflake(900)
WHEN = 1_767_254_400.25  # 2026-01-01T08:00:00.25Z, exact in microseconds


class Incremented(Event):
    event_name = "tests.contract.Incremented"
    token: str
    by: int = 1


class Tally(Aggregate):
    stream_type = "tally"
    snapshot_every = 5
    total: int = 0
    count: int = 0
    tokens: list[str] = []

    def apply(self, event: Event) -> None:
        assert isinstance(event, Incremented)
        self.total += event.by
        self.count += 1
        self.tokens.append(event.token)


def new_event(token: str = "t", key: str = "k", type_: str = "tests.contract.Incremented", by: int = 1,
              causation_id: str | None = None, correlation_id: str | None = None) -> NewEvent:
    return NewEvent(id=IDS.next_int(), type=type_, schema_version=1, json=f'{{"token":"{token}","by":{by}}}',
                    key=key, occurred_at=WHEN, causation_id=causation_id, correlation_id=correlation_id)


def append(stream: str, expected: int, *tokens: str) -> Append:
    return Append(stream, expected, [new_event(t, key=stream) for t in tokens])


def tokens_of(envelopes: list[Envelope]) -> list[str]:
    return [e.data["token"] for e in envelopes]


@contextlib.asynccontextmanager
async def reopened(store: Store, factory: StoreFactory) -> AsyncIterator[Store]:
    """Close ``store`` and open a fresh one over the same durable state."""
    await store.close()
    again = factory(store.service)
    await again.open()
    try:
        yield again
    finally:
        await again.close()


async def whole_log(store: Store, page: int = 7) -> list[Envelope]:
    """Every event of the log, read in small pages."""
    events: list[Envelope] = []
    while True:
        chunk = await store.read_log(events[-1].position if events else 0, page)
        if not chunk:
            return events
        events.extend(chunk)


def make_uow(store: Store, clock: VirtualClock | None = None) -> UnitOfWork:
    return UnitOfWork(store, clock or VirtualClock(), IDS)


def an_envelope(position: int = 3, key: str = "k1", token: str = "x") -> Envelope:
    return Envelope(
        id=encode(IDS.next_int()), type="tests.contract.Incremented", stream=f"tally-{key}", version=2, key=key,
        occurred_at=datetime.fromtimestamp(WHEN, UTC), schema_version=1, data={"token": token, "by": 1},
        source="upstream", position=position, causation_id="c-1", correlation_id="r-1",
    )


async def nothing_written(store: Store) -> None:
    """Assert the store holds no trace of any batch."""
    assert await store.head() == 0
    assert await store.read_log() == []
    assert await store.load_snapshot("tally-a") is None
    assert await store.fetch_all(select(ACCOUNTS)) == []
    assert await store.due_timers(WHEN + 10**6) == []
    assert await store.next_due() is None
    assert await store.checkpoint("sub") == 0
    assert not await store.in_inbox("sub", "e-1")
    assert await store.parked() == []


# -- append and read --------------------------------------------------------------------------
async def test_new_store_is_empty(store: Store) -> None:
    assert await store.head() == 0
    assert await store.read_log() == []
    assert await store.read_stream("tally-a") == []
    assert await store.stream_version("tally-a") == 0
    assert await store.commit(Batch()) == 0


async def test_append_and_read_a_stream(store: Store, store_factory: StoreFactory) -> None:
    first, second = new_event("one", key="a", causation_id="c9", correlation_id="r9"), new_event("two", key="a")
    position = await store.commit(Batch(appends=[Append("tally-a", 0, [first, second])]))
    assert position == 2
    assert await store.stream_version("tally-a") == 2
    events = await store.read_stream("tally-a")
    assert [(e.version, e.position, e.stream, e.key) for e in events] == [
        (1, 1, "tally-a", "a"), (2, 2, "tally-a", "a"),
    ]
    one = events[0]
    assert one.id == encode(first.id)
    assert one.type == "tests.contract.Incremented"
    assert one.schema_version == 1
    assert one.data == {"token": "one", "by": 1}
    assert one.occurred_at == datetime.fromtimestamp(WHEN, UTC)
    assert one.occurred_at.tzinfo is not None
    assert (one.causation_id, one.correlation_id) == ("c9", "r9")
    assert (events[1].causation_id, events[1].correlation_id) == (None, None)
    assert one.source == "svc"
    assert one.event == Incremented(token="one")
    assert tokens_of(await store.read_stream("tally-a", after_version=1)) == ["two"]
    assert await store.read_stream("tally-a", after_version=2) == []
    assert await store.read_stream("tally-b") == []

    await store.commit(Batch(appends=[append("tally-a", 2, "three")]))
    async with reopened(store, store_factory) as again:
        assert tokens_of(await again.read_stream("tally-a")) == ["one", "two", "three"]
        assert [e.version for e in await again.read_stream("tally-a")] == [1, 2, 3]
        assert await again.stream_version("tally-a") == 3


async def test_read_log_in_commit_order_with_contiguous_positions(store: Store, store_factory: StoreFactory) -> None:
    assert await store.commit(Batch(appends=[append("tally-a", 0, "a1", "a2")])) == 2
    assert await store.commit(Batch(appends=[append("tally-b", 0, "b1")])) == 3
    assert await store.commit(Batch(appends=[append("tally-a", 2, "a3"), append("tally-c", 0, "c1", "c2")])) == 6
    assert await store.commit(Batch(checkpoint=("sub", 1))) == 0  # no events: no position
    assert await store.commit(Batch(appends=[append("tally-b", 1, "b2")])) == 7

    log = await store.read_log()
    assert [e.position for e in log] == [1, 2, 3, 4, 5, 6, 7]
    assert tokens_of(log) == ["a1", "a2", "b1", "a3", "c1", "c2", "b2"]
    assert [(e.stream, e.version) for e in log] == [
        ("tally-a", 1), ("tally-a", 2), ("tally-b", 1), ("tally-a", 3), ("tally-c", 1), ("tally-c", 2), ("tally-b", 2),
    ]
    assert await store.head() == 7
    assert tokens_of(await store.read_log(after=3)) == ["a3", "c1", "c2", "b2"]
    assert tokens_of(await store.read_log(after=1, limit=2)) == ["a2", "b1"]
    assert await store.read_log(after=7) == []
    assert tokens_of(await whole_log(store, page=2)) == tokens_of(log)
    async with reopened(store, store_factory) as again:
        assert await again.head() == 7
        assert [(e.position, e.id) for e in await again.read_log()] == [(e.position, e.id) for e in log]


# -- optimistic concurrency and atomicity -----------------------------------------------------
async def test_expected_version_conflict_raises_and_writes_nothing(store: Store) -> None:
    await store.commit(Batch(appends=[append("tally-a", 0, "a1", "a2")]))
    for stale in (0, 1):
        with pytest.raises(ConcurrencyError):
            await store.commit(Batch(appends=[append("tally-a", stale, "lost1", "lost2")]))
    assert tokens_of(await store.read_stream("tally-a")) == ["a1", "a2"]
    assert await store.stream_version("tally-a") == 2
    assert await store.head() == 2
    # the store is still usable, and the right expected version goes through
    assert await store.commit(Batch(appends=[append("tally-a", 2, "a3")])) == 3
    assert tokens_of(await store.read_log()) == ["a1", "a2", "a3"]


async def test_expected_version_ahead_of_the_stream_is_a_conflict(store: Store) -> None:
    await store.commit(Batch(appends=[append("tally-a", 0, "a1")]))
    with pytest.raises(ConcurrencyError):
        await store.commit(Batch(appends=[append("tally-a", 5, "ghost")]))
    with pytest.raises(ConcurrencyError):
        await store.commit(Batch(appends=[append("tally-new", 3, "ghost")]))
    assert [e.version for e in await store.read_log()] == [1]


async def test_conflicting_append_rolls_back_the_whole_batch(store: Store, store_factory: StoreFactory) -> None:
    await store.commit(Batch(appends=[append("tally-b", 0, "b1")]))
    with pytest.raises(ConcurrencyError):
        await store.commit(Batch(
            appends=[append("tally-a", 0, "fine"), append("tally-b", 0, "stale")],
            snapshots=[Snapshot("tally-a", 1, "Tally", {"id": "a"})],
            statements=[insert(ACCOUNTS).values(id="acc", email="a@x", balance=1)],
            timers=[Timer("t-1", "remind", WHEN, {})],
            checkpoint=("sub", 9),
            inbox=[("sub", "e-1")],
            park=[("sub", "k1", an_envelope(), "boom", 3)],
        ))
    assert tokens_of(await store.read_log()) == ["b1"]
    assert await store.stream_version("tally-a") == 0
    assert await store.load_snapshot("tally-a") is None
    assert await store.fetch_all(select(ACCOUNTS)) == []
    assert await store.next_due() is None
    assert await store.checkpoint("sub") == 0
    assert not await store.in_inbox("sub", "e-1")
    assert await store.parked() == []
    async with reopened(store, store_factory) as again:
        assert tokens_of(await again.read_log()) == ["b1"]
        assert await again.stream_version("tally-a") == 0


async def test_failure_late_in_the_batch_rolls_back_the_events(store: Store, store_factory: StoreFactory) -> None:
    """The inbox row is the last thing checked: a duplicate there undoes everything before it."""
    await store.commit(Batch(inbox=[("sub", "e-1")], checkpoint=("sub", 1)))
    with pytest.raises(ConcurrencyError):
        await store.commit(Batch(
            appends=[append("tally-a", 0, "a1")],
            snapshots=[Snapshot("tally-a", 1, "Tally", {"id": "a"})],
            statements=[insert(ACCOUNTS).values(id="acc", email="a@x", balance=1)],
            timers=[Timer("t-1", "remind", WHEN, {})],
            checkpoint=("sub", 9),
            inbox=[("sub", "e-2"), ("sub", "e-1")],
        ))
    assert await store.head() == 0
    assert await store.load_snapshot("tally-a") is None
    assert await store.fetch_all(select(ACCOUNTS)) == []
    assert await store.next_due() is None
    assert await store.checkpoint("sub") == 1
    assert not await store.in_inbox("sub", "e-2")
    async with reopened(store, store_factory) as again:
        assert await again.head() == 0
        assert await again.checkpoint("sub") == 1


async def test_any_version_appends(store: Store) -> None:
    await store.commit(Batch(appends=[append("log-a", ANY_VERSION, "x1", "x2")]))
    await store.commit(Batch(appends=[append("log-a", 2, "x3")]))
    await store.commit(Batch(appends=[append("log-a", ANY_VERSION, "x4"), append("log-b", ANY_VERSION, "y1")]))
    assert [(e.version, e.data["token"]) for e in await store.read_stream("log-a")] == [
        (1, "x1"), (2, "x2"), (3, "x3"), (4, "x4"),
    ]
    assert await store.stream_version("log-b") == 1
    assert [e.position for e in await store.read_log()] == [1, 2, 3, 4, 5]


async def test_several_appends_to_one_stream_in_one_batch_follow_each_other(store: Store) -> None:
    await store.commit(Batch(appends=[append("log-a", ANY_VERSION, "x1"), append("log-a", ANY_VERSION, "x2")]))
    await store.commit(Batch(appends=[append("log-a", 2, "x3"), append("log-a", ANY_VERSION, "x4", "x5")]))
    assert [(e.version, e.data["token"]) for e in await store.read_stream("log-a")] == [
        (1, "x1"), (2, "x2"), (3, "x3"), (4, "x4"), (5, "x5"),
    ]
    with pytest.raises(ConcurrencyError):  # an expected version still counts against the stored stream
        await store.commit(Batch(appends=[append("log-a", ANY_VERSION, "y1"), append("log-a", 5, "y2")]))
    assert await store.stream_version("log-a") == 5


async def test_unit_of_work_append_twice_to_one_stream(store: Store) -> None:
    uow = make_uow(store)
    uow.append("positions", Incremented(token="p1"))
    uow.append("positions", Incremented(token="p2"))
    await uow.commit()
    assert tokens_of(await store.read_stream("positions")) == ["p1", "p2"]


async def test_an_append_without_events_writes_nothing_and_has_no_position(store: Store) -> None:
    await store.commit(Batch(appends=[append("tally-a", 0, "a1")]))
    await store.commit(Batch(timers=[Timer(f"t-{n}", "remind", WHEN, {}) for n in range(3)]))
    await store.commit(Batch(timers=[Timer("t-9", "remind", WHEN, {})]))
    assert await store.commit(Batch(appends=[Append("log-a", ANY_VERSION, [])])) == 0
    assert await store.head() == 1
    assert await store.stream_version("log-a") == 0


# -- many writers at once ---------------------------------------------------------------------
async def test_group_commit_fails_only_the_conflicting_writer(store: Store) -> None:
    """Concurrent one-event commits may be committed together (group commit); when one of them loses
    its race, the group falls back to one by one: only that writer fails, the others' events are
    committed and visible in the order of their positions."""
    await store.commit(Batch(appends=[append("tally-x", 0, "x1")]))
    # started at once: a store with group commit commits them together, the loser among them
    busy = [Batch(appends=[append(f"tally-busy-{n}", 0, f"busy-{n}")]) for n in range(3)]
    loser = Batch(appends=[append("tally-x", 0, "lost")])  # stream x is at version 1 already
    winner = Batch(appends=[append("tally-y", ANY_VERSION, "y1")])
    results = await asyncio.gather(*(store.commit(b) for b in [*busy, loser, winner]), return_exceptions=True)
    assert isinstance(results[3], ConcurrencyError)
    positions = [r for n, r in enumerate(results) if n != 3]
    assert all(isinstance(p, int) for p in positions), results
    assert sorted(positions) == [2, 3, 4, 5]  # type: ignore[type-var]
    log = await store.read_log()
    assert [e.position for e in log] == [1, 2, 3, 4, 5]
    assert tokens_of(log)[0] == "x1" and "lost" not in tokens_of(log)
    by_position = {e.position: e.data["token"] for e in log}
    assert [by_position[p] for p in positions] == ["busy-0", "busy-1", "busy-2", "y1"]  # type: ignore[index]
    assert tokens_of(await store.read_stream("tally-y")) == ["y1"]
    assert tokens_of(await store.read_stream("tally-x")) == ["x1"]
    # the loser retries on fresh state and goes through
    assert await store.commit(Batch(appends=[append("tally-x", 1, "x2")])) == 6


async def test_concurrent_writers_every_commit_exactly_once_without_gaps(store: Store) -> None:
    clock = VirtualClock()
    streams = ["a", "b", "c"]

    # Round 1: everyone loads the same versions, then everyone commits: one winner per stream.
    barrier = asyncio.Barrier(24)
    won: dict[str, int] = {}
    lost: list[str] = []

    async def racer(n: int) -> None:
        uow = make_uow(store, clock)
        aggregate_id = streams[n % 3]
        tally = await uow.load(Tally, aggregate_id) or await uow.create(Tally, aggregate_id)
        token = f"race-{n}"
        tally.record(Incremented(token=token))
        await barrier.wait()
        try:
            won[token] = await uow.commit()
        except ConcurrencyError:
            lost.append(token)

    # Round 2: retrying writers and multi-stream units of work interleave with a reader.
    attempts: Tally_[str] = Tally_()
    committed: dict[str, int] = {}

    async def writer(n: int) -> None:
        token = f"w-{n}"

        async def work(uow: UnitOfWork) -> None:
            attempts[token] += 1
            first = await uow.load(Tally, streams[n % 3]) or await uow.create(Tally, streams[n % 3])
            first.record(Incremented(token=token))
            if n % 4 == 0:  # some units of work touch two streams and a raw log stream at once
                other = await uow.load(Tally, streams[(n + 1) % 3]) or await uow.create(Tally, streams[(n + 1) % 3])
                other.record(Incremented(token=token + "/2"))
                uow.append(f"audit-{n}", Incremented(token=token + "/audit"))
            await asyncio.sleep(0)  # let the others load the same version
            uow.after_commit(lambda: _note(token, uow))

        await run_with_retries(lambda: make_uow(store, clock), work, attempts=200)

    async def _note(token: str, uow: UnitOfWork) -> None:
        committed[token] = uow.position

    seen: list[Envelope] = []
    writers_done = asyncio.Event()

    async def reader() -> None:
        while True:
            chunk = await store.read_log(seen[-1].position if seen else 0, 5)
            # never a gap: each page continues exactly where the previous one ended
            expected_first = (seen[-1].position if seen else 0) + 1
            assert [e.position for e in chunk] == list(range(expected_first, expected_first + len(chunk)))
            seen.extend(chunk)
            if writers_done.is_set() and not chunk and seen and seen[-1].position == await store.head():
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(racer(n) for n in range(24)))
    assert len(won) == 3
    assert len(lost) == 21
    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(30)))
    writers_done.set()
    await asyncio.wait_for(reading, timeout=10)

    assert sum(attempts.values()) > 30  # the writers did collide and retry
    assert set(committed) == {f"w-{n}" for n in range(30)}

    log = await whole_log(store)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert [(e.id, e.position) for e in seen] == [(e.id, e.position) for e in log]
    assert len({e.id for e in log}) == len(log)
    expected_tokens = set(won)
    for n in range(30):
        expected_tokens.add(f"w-{n}")
        if n % 4 == 0:
            expected_tokens |= {f"w-{n}/2", f"w-{n}/audit"}
    counts = Tally_(tokens_of(log))
    assert set(counts) == expected_tokens  # every successful commit, no lost racer
    assert set(counts.values()) == {1}  # exactly once
    for token, position in [*won.items(), *committed.items()]:  # commit() answered its last position
        assert tokens_of(await store.read_log(position - 1, 1))[0].split("/")[0] == token
    for stream in ("tally-a", "tally-b", "tally-c"):  # each stream: versions 1..n in log order
        versions = [e.version for e in log if e.stream == stream]
        assert versions == list(range(1, len(versions) + 1))
        assert versions == [e.version for e in await store.read_stream(stream)]
    for aggregate_id in streams:  # aggregates agree with the log (and with their snapshots)
        tally = await make_uow(store).get(Tally, aggregate_id)
        assert tally.tokens == [e.data["token"] for e in log if e.stream == f"tally-{aggregate_id}"]


# -- snapshots --------------------------------------------------------------------------------
async def test_snapshots_are_saved_replaced_and_durable(store: Store, store_factory: StoreFactory) -> None:
    assert await store.load_snapshot("tally-a") is None
    await store.commit(Batch(snapshots=[Snapshot("tally-a", 5, "Tally", {"id": "a", "total": 5})]))
    assert await store.load_snapshot("tally-a") == Snapshot("tally-a", 5, "Tally", {"id": "a", "total": 5})
    await store.commit(Batch(snapshots=[Snapshot("tally-a", 10, "Tally", {"id": "a", "total": 10, "n": [1, 2]})]))
    assert await store.load_snapshot("tally-b") is None
    async with reopened(store, store_factory) as again:
        assert await again.load_snapshot("tally-a") == Snapshot(
            "tally-a", 10, "Tally", {"id": "a", "total": 10, "n": [1, 2]}
        )


async def test_unit_of_work_snapshots_every_n_events_and_loads_snapshot_plus_tail(
    store: Store, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot_versions: list[int | None] = []
    for commit_no in range(6):  # two events per unit of work: versions 2, 4, 6, 8, 10, 12
        uow = make_uow(store)
        tally = await uow.load(Tally, "a") or await uow.create(Tally, "a")
        for i in range(2):
            tally.record(Incremented(token=f"{commit_no}.{i}", by=commit_no + i))
        await uow.commit()
        snapshot = await store.load_snapshot("tally-a")
        snapshot_versions.append(snapshot.version if snapshot else None)
    # a snapshot whenever a commit crosses a multiple of snapshot_every (5), taken at the new version
    assert snapshot_versions == [None, None, 6, 6, 10, 10]

    full = Tally(id="a")
    for envelope in await store.read_stream("tally-a"):
        full.apply(envelope.event)
    assert full.count == 12

    reads: list[tuple[str, int]] = []
    real_read_stream = store.read_stream

    async def spy(stream: str, after_version: int = 0) -> list[Envelope]:
        reads.append((stream, after_version))
        return await real_read_stream(stream, after_version)

    monkeypatch.setattr(store, "read_stream", spy)
    loaded = await make_uow(store).get(Tally, "a")
    assert reads == [("tally-a", 10)]  # only the tail after the snapshot
    assert loaded.version == 12
    assert loaded.model_dump() == full.model_dump()

    # the snapshot really is what loading starts from: doctor it and the tail lands on top
    snapshot = await store.load_snapshot("tally-a")
    assert snapshot is not None
    assert snapshot.type == "Tally"
    await store.commit(Batch(snapshots=[Snapshot("tally-a", 10, "Tally", {**snapshot.data, "total": 1000})]))
    doctored = await make_uow(store).get(Tally, "a")
    assert doctored.total == 1000 + 5 + 6  # the tail: events 11 and 12 (by 5 and 6)
    assert doctored.tokens == full.tokens

    monkeypatch.undo()
    await store.commit(Batch(snapshots=[snapshot]))
    async with reopened(store, store_factory) as again:  # snapshot and tail survive a restart
        restored = await make_uow(again).get(Tally, "a")
        assert restored.model_dump() == full.model_dump()
        assert restored.version == 12
        uow = make_uow(again)  # and the loaded version is the one to append after
        (await uow.get(Tally, "a")).record(Incremented(token="13"))
        await uow.commit()
        assert await again.stream_version("tally-a") == 13


async def test_snapshot_of_another_type_is_ignored(store: Store) -> None:
    uow = make_uow(store)
    tally = await uow.create(Tally, "a")
    tally.record(Incremented(token="only", by=3))
    await uow.commit()
    await store.commit(Batch(snapshots=[Snapshot("tally-a", 1, "SomethingElse", {"id": "a", "total": 99})]))
    loaded = await make_uow(store).get(Tally, "a")
    assert loaded.total == 3
    assert loaded.version == 1


# -- timers -----------------------------------------------------------------------------------
async def test_timers_persist_come_due_in_order_and_cancel(store: Store, store_factory: StoreFactory) -> None:
    assert await store.next_due() is None
    await store.commit(Batch(timers=[
        Timer("t-late", "remind", WHEN + 30, {"n": 3}),
        Timer("t-early", "remind", WHEN + 10, {"n": 1, "nested": {"a": [1, 2]}}),
        Timer("t-mid", "expire", WHEN + 20, {}),
    ]))
    async with reopened(store, store_factory) as again:
        assert await again.next_due() == WHEN + 10
        assert await again.due_timers(WHEN) == []
        assert await again.due_timers(WHEN + 25) == [
            Timer("t-early", "remind", WHEN + 10, {"n": 1, "nested": {"a": [1, 2]}}),
            Timer("t-mid", "expire", WHEN + 20, {}),
        ]
        assert [t.id for t in await again.due_timers(WHEN + 30)] == ["t-early", "t-mid", "t-late"]  # at or before
        assert [t.id for t in await again.due_timers(WHEN + 99, limit=2)] == ["t-early", "t-mid"]

        await again.commit(Batch(cancelled_timers=["t-early", "never-existed"]))
        assert [t.id for t in await again.due_timers(WHEN + 99)] == ["t-mid", "t-late"]
        assert await again.next_due() == WHEN + 20

        # a fired timer re-armed under its own id in the same batch that cancels it
        await again.commit(Batch(cancelled_timers=["t-mid"], timers=[Timer("t-mid", "expire", WHEN + 50, {"x": 1})]))
        assert [t.id for t in await again.due_timers(WHEN + 99)] == ["t-late", "t-mid"]
        # scheduling an existing id again replaces it
        await again.commit(Batch(timers=[Timer("t-late", "remind", WHEN + 60, {"n": 4})]))
        assert await again.due_timers(WHEN + 99) == [
            Timer("t-mid", "expire", WHEN + 50, {"x": 1}),
            Timer("t-late", "remind", WHEN + 60, {"n": 4}),
        ]
        async with reopened(again, store_factory) as third:
            assert [t.id for t in await third.due_timers(WHEN + 99)] == ["t-mid", "t-late"]
            await third.commit(Batch(cancelled_timers=["t-mid", "t-late"]))
            assert await third.next_due() is None
            assert await third.due_timers(WHEN + 10**6) == []


async def test_unit_of_work_schedules_and_cancels_with_its_commit(store: Store) -> None:
    uow = make_uow(store)
    tally = await uow.create(Tally, "a")
    tally.record(Incremented(token="x"))
    timer_id = uow.schedule(datetime.fromtimestamp(WHEN + 5, UTC), "remind", {"tally": "a"})
    assert await store.next_due() is None  # nothing before the commit
    await uow.commit()
    assert await store.due_timers(WHEN + 5) == [Timer(timer_id, "remind", WHEN + 5, {"tally": "a"})]
    cancelling = make_uow(store)
    cancelling.cancel(timer_id)
    await cancelling.commit()
    assert await store.next_due() is None


# -- subscriptions: checkpoints, inbox --------------------------------------------------------
async def test_checkpoints_only_move_forward(store: Store, store_factory: StoreFactory) -> None:
    assert await store.checkpoint("sub") == 0
    await store.commit(Batch(checkpoint=("sub", 5)))
    assert await store.checkpoint("sub") == 5
    await store.commit(Batch(checkpoint=("sub", 3)))  # a late, older checkpoint does not win
    assert await store.checkpoint("sub") == 5
    await store.commit(Batch(checkpoint=("sub", 9)))
    await store.commit(Batch(checkpoint=("other", 2)))
    assert await store.checkpoint("sub") == 9
    assert await store.checkpoint("other") == 2
    async with reopened(store, store_factory) as again:
        assert await again.checkpoint("sub") == 9
        assert await again.checkpoint("other") == 2


async def test_inbox_records_handled_events_once(store: Store, store_factory: StoreFactory) -> None:
    assert not await store.in_inbox("sub", "e-1")
    await store.commit(Batch(inbox=[("sub", "e-1"), ("sub", "e-2")], checkpoint=("sub", 2)))
    assert await store.in_inbox("sub", "e-1")
    assert await store.in_inbox("sub", "e-2")
    assert not await store.in_inbox("other", "e-1")  # per subscription
    await store.commit(Batch(inbox=[("other", "e-1")]))
    assert await store.in_inbox("other", "e-1")
    with pytest.raises(ConcurrencyError):  # handled twice: the second commit loses
        await store.commit(Batch(appends=[append("tally-a", 0, "dup")], inbox=[("sub", "e-1")], checkpoint=("sub", 7)))
    assert await store.head() == 0
    assert await store.checkpoint("sub") == 2
    async with reopened(store, store_factory) as again:
        assert await again.in_inbox("sub", "e-2")
        assert await again.in_inbox("other", "e-1")


async def test_handled_answers_a_batch_of_ids_in_one_call(store: Store) -> None:
    many = [f"e-{n}" for n in range(1200)]  # more than one chunk of bound parameters
    await store.commit(Batch(inbox=[("sub", i) for i in many[::3]] + [("other", "e-1")]))
    assert await store.handled("sub", many) == set(many[::3])
    assert await store.handled("sub", []) == set()
    assert await store.handled("none", many) == set()


async def test_sequences_count_from_one_per_name_durably_and_distinctly(
        store: Store, store_factory: StoreFactory) -> None:
    assert [await store.next_value("users") for _ in range(3)] == [1, 2, 3]
    assert await store.next_value("friends") == 1  # each name counts on its own
    taken = await asyncio.gather(*(store.next_value("users") for _ in range(50)))
    assert sorted(taken) == list(range(4, 54))  # concurrent takers never share a number
    async with reopened(store, store_factory) as again:
        assert await again.next_value("users") == 54


async def test_reset_checkpoint_forgets_position_and_inbox(store: Store, store_factory: StoreFactory) -> None:
    await store.commit(Batch(inbox=[("sub", "e-1")], checkpoint=("sub", 4)))
    await store.commit(Batch(inbox=[("other", "e-1")], checkpoint=("other", 6)))
    await store.reset_checkpoint("sub")
    assert await store.checkpoint("sub") == 0
    assert not await store.in_inbox("sub", "e-1")
    assert await store.checkpoint("other") == 6  # other subscriptions untouched
    assert await store.in_inbox("other", "e-1")
    await store.commit(Batch(inbox=[("sub", "e-1")], checkpoint=("sub", 1)))  # handled anew, from the start
    assert await store.checkpoint("sub") == 1
    await store.reset_checkpoint("never-seen")  # no error
    async with reopened(store, store_factory) as again:
        assert await again.checkpoint("sub") == 1
        assert await again.checkpoint("other") == 6


# -- parked messages --------------------------------------------------------------------------
async def test_park_and_list(store: Store, store_factory: StoreFactory) -> None:
    head = an_envelope(position=3, key="k1", token="first")
    behind = an_envelope(position=4, key="k1", token="second")
    elsewhere = an_envelope(position=5, key="k2", token="third")
    await store.commit(Batch(park=[("sub", "k1", head, "boom", 3)]))
    await store.commit(Batch(park=[("sub", "k1", behind, None, 0), ("other", "k2", elsewhere, "bang", 1)]))

    async with reopened(store, store_factory) as again:
        parked = await again.parked()
        assert [(p.subscription, p.key, p.error, p.attempts, p.retry_requested) for p in parked] == [
            ("sub", "k1", "boom", 3, False), ("sub", "k1", None, 0, False), ("other", "k2", "bang", 1, False),
        ]
        assert parked[0].id < parked[1].id < parked[2].id  # oldest first
        assert all(isinstance(p.parked_at, float) for p in parked)
        restored = parked[0].envelope
        assert (restored.id, restored.type, restored.stream, restored.version, restored.key) == (
            head.id, head.type, head.stream, head.version, head.key,
        )
        assert restored.occurred_at == head.occurred_at
        assert (restored.position, restored.data, restored.schema_version) == (3, {"token": "first", "by": 1}, 1)
        assert (restored.causation_id, restored.correlation_id, restored.source) == ("c-1", "r-1", "upstream")
        assert restored.event == Incremented(token="first")
        assert [p.envelope.data["token"] for p in await again.parked("sub")] == ["first", "second"]
        assert [p.key for p in await again.parked("other")] == ["k2"]
        assert await again.parked("nobody") == []

        await again.commit(Batch(unpark=[parked[0].id]))  # delivered after all
        assert [p.id for p in await again.parked()] == [parked[1].id, parked[2].id]


async def test_request_retry_and_mark_failed(store: Store, store_factory: StoreFactory) -> None:
    await store.commit(Batch(park=[
        ("sub", "k1", an_envelope(3, "k1"), "boom", 3),
        ("sub", "k1", an_envelope(4, "k1"), None, 0),
        ("sub", "k2", an_envelope(5, "k2"), "bang", 3),
        ("other", "k1", an_envelope(6, "k1"), "zap", 3),
    ]))
    assert await store.request_retry("sub", "k1") == 2
    assert [(p.subscription, p.key, p.retry_requested) for p in await store.parked()] == [
        ("sub", "k1", True), ("sub", "k1", True), ("sub", "k2", False), ("other", "k1", False),
    ]
    assert await store.request_retry("sub") == 3  # every key of the subscription
    assert await store.request_retry("nobody") == 0
    assert await store.request_retry("sub", "no-such-key") == 0
    assert [p.retry_requested for p in await store.parked()] == [True, True, True, False]

    first = (await store.parked("sub"))[0]
    await store.mark_parked_failed(first.id, "boom again", 3)  # a retry round of 3 more attempts failed
    async with reopened(store, store_factory) as again:
        failed = (await again.parked("sub"))[0]
        assert failed.id == first.id
        assert failed.error == "boom again"
        assert failed.attempts == 6
        # its whole key waits again behind it; the other key's retry request stands
        assert [(p.key, p.error, p.attempts, p.retry_requested) for p in await again.parked()] == [
            ("k1", "boom again", 6, False), ("k1", None, 0, False), ("k2", "bang", 3, True), ("k1", "zap", 3, False),
        ]


async def test_drop_parked_removes_only_the_head_and_releases_the_rest(
    store: Store, store_factory: StoreFactory
) -> None:
    await store.commit(Batch(park=[
        ("sub", "k1", an_envelope(3, "k1", "head"), "boom", 3),
        ("sub", "k2", an_envelope(4, "k2", "k2-head"), "bang", 3),
        ("sub", "k1", an_envelope(5, "k1", "behind-1"), None, 0),
        ("sub", "k1", an_envelope(6, "k1", "behind-2"), None, 0),
        ("other", "k1", an_envelope(7, "k1", "other-head"), "zap", 3),
    ]))
    assert await store.drop_parked("sub", "k1") == 1
    async with reopened(store, store_factory) as again:
        left = await again.parked()
        assert [(p.subscription, p.envelope.data["token"], p.retry_requested) for p in left] == [
            ("sub", "k2-head", False),  # other keys are untouched
            ("sub", "behind-1", True),  # the ones behind the dropped message may go now
            ("sub", "behind-2", True),
            ("other", "other-head", False),  # the same key in another subscription too
        ]
        assert await again.drop_parked("sub", "k1") == 1  # the next head
        assert [p.envelope.data["token"] for p in await again.parked("sub")] == ["k2-head", "behind-2"]
        assert await again.drop_parked("sub", "k1") == 1
        assert await again.drop_parked("sub", "k1") == 0  # nothing left for that key
        assert await again.drop_parked("nobody", "k1") == 0
        assert [p.envelope.data["token"] for p in await again.parked()] == ["k2-head", "other-head"]


# -- the service's own tables -----------------------------------------------------------------
async def test_statements_commit_with_the_events(store: Store, store_factory: StoreFactory) -> None:
    position = await store.commit(Batch(
        appends=[append("tally-a", 0, "opened")],
        statements=[insert(ACCOUNTS).values(id="acc-1", email="ann@example.com", balance=10),
                    insert(ACCOUNTS).values(id="acc-2", email="bob@example.com", balance=0)],
    ))
    assert position == 1
    rows = await store.fetch_all(select(ACCOUNTS).order_by(ACCOUNTS.c.id))
    assert [dict(r) for r in rows] == [
        {"id": "acc-1", "email": "ann@example.com", "balance": 10},
        {"id": "acc-2", "email": "bob@example.com", "balance": 0},
    ]
    await store.commit(Batch(statements=[update(ACCOUNTS).where(ACCOUNTS.c.id == "acc-1").values(balance=25)]))
    row = await store.fetch_one(select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == "acc-1"))
    assert row is not None
    assert row["balance"] == 25
    assert await store.fetch_one(select(ACCOUNTS).where(ACCOUNTS.c.id == "nobody")) is None
    async with reopened(store, store_factory) as again:
        assert await again.fetch_one(select(func.count()).select_from(ACCOUNTS)) == {"count_1": 2}
        assert tokens_of(await again.read_log()) == ["opened"]
        await again.truncate(["accounts"])
        assert await again.fetch_all(select(ACCOUNTS)) == []
        assert await again.head() == 1  # truncating a table leaves the log alone


async def test_unique_violation_in_a_statement_is_a_conflict_and_drops_the_events(
    store: Store, store_factory: StoreFactory
) -> None:
    await store.commit(Batch(statements=[insert(ACCOUNTS).values(id="acc-1", email="ann@example.com", balance=1)]))
    for clash in (
        insert(ACCOUNTS).values(id="acc-1", email="other@example.com", balance=2),  # primary key
        insert(ACCOUNTS).values(id="acc-2", email="ann@example.com", balance=2),  # unique column
    ):
        with pytest.raises(ConcurrencyError):
            await store.commit(Batch(
                appends=[append("tally-a", 0, "registered")],
                snapshots=[Snapshot("tally-a", 1, "Tally", {"id": "a"})],
                statements=[update(ACCOUNTS).values(balance=99), clash],
                timers=[Timer("t-1", "remind", WHEN, {})],
                checkpoint=("sub", 3),
            ))
    assert await store.head() == 0
    assert await store.stream_version("tally-a") == 0
    assert await store.load_snapshot("tally-a") is None
    assert await store.next_due() is None
    assert await store.checkpoint("sub") == 0
    assert [dict(r) for r in await store.fetch_all(select(ACCOUNTS))] == [
        {"id": "acc-1", "email": "ann@example.com", "balance": 1},  # the update before the clash is undone too
    ]
    async with reopened(store, store_factory) as again:
        assert await again.head() == 0
        assert len(await again.fetch_all(select(ACCOUNTS))) == 1


async def test_upsert_inserts_then_updates_or_does_nothing(store: Store, store_factory: StoreFactory) -> None:
    def deposit(amount: int) -> Executable:
        return store.upsert(ACCOUNTS, {"id": "acc-1", "email": "ann@example.com", "balance": amount}, ["id"],
                            {"balance": ACCOUNTS.c.balance + amount})

    await store.commit(Batch(statements=[deposit(10)]))  # inserted
    await store.commit(Batch(statements=[deposit(5), deposit(1)]))  # a clash applies the update, in order
    keep = store.upsert(ACCOUNTS, {"id": "acc-1", "email": "other@example.com", "balance": 0}, ["id"])
    await store.commit(Batch(statements=[keep]))  # no update given: the clash changes nothing
    assert [dict(r) for r in await store.fetch_all(select(ACCOUNTS))] == [
        {"id": "acc-1", "email": "ann@example.com", "balance": 16},
    ]
    clash = store.upsert(ACCOUNTS, {"id": "acc-2", "email": "ann@example.com", "balance": 0}, ["id"])
    with pytest.raises(ConcurrencyError):  # a unique column other than the keys still conflicts
        await store.commit(Batch(appends=[append("tally-a", 0, "a1")], statements=[clash]))
    async with reopened(store, store_factory) as again:
        assert await again.head() == 0
        assert [r["balance"] for r in await again.fetch_all(select(ACCOUNTS))] == [16]


async def test_runs_of_row_upserts_keep_their_order_among_other_statements(store: Store) -> None:
    def row(n: int, balance: int, update: bool = True) -> RowWrite:
        values = {"id": f"acc-{n}", "email": f"{n}@example.com", "balance": balance}
        return RowWrite(ACCOUNTS, values, ("id",), {"balance": balance} if update else None)

    writes: list[Write] = [row(n, n) for n in range(300)]  # one run of one shape
    writes += [update(ACCOUNTS).where(ACCOUNTS.c.id == "acc-1").values(balance=1000)]  # a statement between
    writes += [row(1, 7, update=False), row(2, 20), row(2, 21)]  # two more runs: do-nothing, then updates
    await store.commit(Batch(statements=writes))
    balances = {r["id"]: r["balance"] for r in await store.fetch_all(select(ACCOUNTS))}
    assert len(balances) == 300
    assert (balances["acc-0"], balances["acc-1"], balances["acc-2"], balances["acc-299"]) == (0, 1000, 21, 299)
    uow = UnitOfWork(store, VirtualClock(), IDS)  # the unit of work queues plain upserts as RowWrites
    uow.upsert(ACCOUNTS, {"id": "acc-5", "email": "5@example.com", "balance": 0}, ["id"], {"balance": 55})
    uow.upsert(ACCOUNTS, {"id": "acc-5", "email": "5@example.com", "balance": 0}, ["id"],
               {"balance": ACCOUNTS.c.balance + 1})  # an expression: part of its statement
    await uow.commit()
    assert (await store.fetch_one(select(ACCOUNTS.c.balance).where(ACCOUNTS.c.id == "acc-5")))["balance"] == 56
    uow.insert(ACCOUNTS, {"id": "acc-new", "email": "new@example.com", "balance": 3})  # a plain insert row
    await uow.commit()
    uow.insert(ACCOUNTS, {"id": "acc-new", "email": "newer@example.com", "balance": 4})
    with pytest.raises(ConcurrencyError):  # ... whose clash is a unique violation, as for a statement
        await uow.commit()
    assert (await store.fetch_one(select(ACCOUNTS).where(ACCOUNTS.c.id == "acc-new")))["balance"] == 3
    with pytest.raises(ConcurrencyError):  # a clash on a unique column of a run fails the whole batch
        await store.commit(Batch(statements=[row(900, 1), RowWrite(ACCOUNTS, {
            "id": "acc-901", "email": "900@example.com", "balance": 0}, ("id",), {"balance": 0})]))
    assert await store.fetch_one(select(ACCOUNTS).where(ACCOUNTS.c.id == "acc-900")) is None


async def test_any_failing_statement_rolls_the_batch_back(store: Store) -> None:
    ghost = Table("ghost", MetaData(), Column("x", Integer))  # never created
    failure: Exception | None = None
    try:
        await store.commit(Batch(
            appends=[append("tally-a", 0, "a1")],
            statements=[insert(ACCOUNTS).values(id="acc-1", email="a@x", balance=1), insert(ghost).values(x=1)],
            timers=[Timer("t-1", "remind", WHEN, {})],
        ))
    except (SQLAlchemyError, JunctionError) as error:
        failure = error
    assert failure is not None
    await nothing_written(store)
    assert await store.commit(Batch(appends=[append("tally-a", 0, "a1")])) == 1  # and the store still works


async def test_unit_of_work_commits_aggregates_statements_and_timers_together(store: Store) -> None:
    uow = make_uow(store)
    (await uow.create(Tally, "a")).record(Incremented(token="a1"))
    uow.execute(insert(ACCOUNTS).values(id="acc-1", email="ann@example.com", balance=0))
    uow.schedule(WHEN, "remind")
    assert await uow.commit() == 1
    assert await store.head() == 1
    assert len(await store.fetch_all(select(ACCOUNTS))) == 1
    assert len(await store.due_timers(WHEN)) == 1

    losing = make_uow(store)
    (await losing.create(Tally, "a")).record(Incremented(token="a-again"))  # "a" exists: a race lost
    losing.execute(update(ACCOUNTS).values(balance=50))
    losing.schedule(WHEN, "remind")
    with pytest.raises(ConcurrencyError):
        await losing.commit()
    assert tokens_of(await store.read_log()) == ["a1"]
    assert [r["balance"] for r in await store.fetch_all(select(ACCOUNTS))] == [0]
    assert len(await store.due_timers(WHEN)) == 1


# -- waking readers ---------------------------------------------------------------------------
async def test_wait_for_append_wakes_on_commit_or_times_out(store: Store) -> None:
    await asyncio.wait_for(store.wait_for_append(0.05), timeout=2)  # nothing committed: times out quietly
    waiter = asyncio.create_task(store.wait_for_append(30))
    await asyncio.sleep(0)
    await store.commit(Batch(appends=[append("tally-a", 0, "a1")]))
    await asyncio.wait_for(waiter, timeout=2)
