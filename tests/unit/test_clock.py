"""Clocks: the virtual clock for tests, the scaled clock for demos, and make_clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from junction.clock import RealClock, ScaledClock, VirtualClock, make_clock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = START.timestamp()


# -- VirtualClock -----------------------------------------------------------------------------
async def test_virtual_clock_stands_still() -> None:
    clock = VirtualClock(START)
    assert clock.now() == START
    assert clock.now().tzinfo is not None
    assert clock.timestamp() == T0
    time.sleep(0.02)
    await asyncio.sleep(0.02)
    assert clock.timestamp() == T0
    assert clock.now() == START


def test_virtual_clock_default_start_is_fixed() -> None:
    assert VirtualClock().now() == datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    assert VirtualClock().timestamp() == VirtualClock().timestamp()


async def test_advance_moves_time_by_exactly_the_step() -> None:
    clock = VirtualClock(START)
    await clock.advance(90)
    assert clock.timestamp() == T0 + 90
    await clock.advance(timedelta(minutes=2))
    assert clock.now() == START + timedelta(seconds=210)
    await clock.advance(0)
    assert clock.timestamp() == T0 + 210


async def test_advance_wakes_sleepers_in_deadline_order_at_their_own_instants() -> None:
    clock = VirtualClock(START)
    woken: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woken.append((name, clock.timestamp()))

    # created out of order on purpose
    tasks = [asyncio.create_task(sleeper(name, delay))
             for name, delay in (("c", 30), ("a", 10), ("late", 500), ("b", 20), ("a2", 10))]
    await clock.advance(60)
    assert woken == [("a", T0 + 10), ("a2", T0 + 10), ("b", T0 + 20), ("c", T0 + 30)]
    assert clock.timestamp() == T0 + 60
    assert not tasks[2].done()  # its deadline is not reached
    await clock.advance(440)
    assert woken[-1] == ("late", T0 + 500)
    await asyncio.gather(*tasks)


async def test_sleeping_until_a_past_instant_returns_without_advance() -> None:
    clock = VirtualClock(START)
    await asyncio.wait_for(clock.sleep_until(T0 - 5), timeout=1)
    await asyncio.wait_for(clock.sleep(0), timeout=1)
    assert clock.timestamp() == T0


async def test_sleeper_does_not_wake_before_its_deadline() -> None:
    clock = VirtualClock(START)
    task = asyncio.create_task(clock.sleep(100))
    await clock.advance(99.5)
    assert not task.done()
    await clock.advance(0.5)
    assert task.done()


async def test_chained_sleeper_fires_at_every_own_deadline_without_drift() -> None:
    clock = VirtualClock(START)
    fired: list[float] = []

    async def every_minute() -> None:
        deadline = clock.timestamp()
        while True:
            deadline += 60
            await clock.sleep_until(deadline)
            fired.append(clock.timestamp())

    task = asyncio.create_task(every_minute())
    await clock.advance(190)
    assert fired == [T0 + 60, T0 + 120, T0 + 180]
    assert clock.timestamp() == T0 + 190
    await clock.advance(50)
    assert fired[-1] == T0 + 240
    assert len(fired) == 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_chained_sleeper_rearming_from_now_after_busy_work() -> None:
    """Work done inside ``busy()`` is waited for before time moves on, so re-arming from now is exact."""
    clock = VirtualClock(START)
    fired: list[float] = []

    async def tick() -> None:
        while True:
            await clock.sleep(60)
            async with clock.busy():
                await asyncio.sleep(0.01)  # real work that takes (real) time
                fired.append(clock.timestamp())

    task = asyncio.create_task(tick())
    await clock.advance(190)
    assert fired == [T0 + 60, T0 + 120, T0 + 180]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_negative_advance_raises_and_time_stays() -> None:
    clock = VirtualClock(START)
    with pytest.raises(ValueError):
        await clock.advance(-1)
    with pytest.raises(ValueError):
        await clock.advance(timedelta(seconds=-0.5))
    assert clock.timestamp() == T0


# -- ScaledClock and make_clock ---------------------------------------------------------------
def test_scaled_clock_runs_faster() -> None:
    clock = ScaledClock(10)
    started = time.perf_counter()
    before = clock.timestamp()
    time.sleep(0.2)
    moved = clock.timestamp() - before
    real = time.perf_counter() - started
    assert moved >= 1.0  # at least 0.2 s of real time, ten times over
    assert 5 <= moved / real <= 11  # about ten times as fast, however long the sleep overshot


def test_scaled_clocks_with_one_origin_agree_and_run_ahead_of_the_wall() -> None:
    origin = time.time() - 10  # started 10 real seconds ago
    first, second = ScaledClock(100, origin), ScaledClock(100, origin)
    assert abs(first.timestamp() - second.timestamp()) < 5  # two processes, one platform time
    assert 900 <= first.timestamp() - origin < 1100  # 10 real seconds at x100
    assert first.now().tzinfo is not None


async def test_scaled_clock_sleep_takes_scaled_real_time() -> None:
    clock = ScaledClock(50)
    started = time.monotonic()
    before = clock.timestamp()
    await clock.sleep(5)  # 0.1 s of real time
    real = time.monotonic() - started
    assert clock.timestamp() - before >= 5
    assert real < 2.0


@pytest.mark.parametrize("scale", [0, -1, -0.5])
def test_scaled_clock_rejects_non_positive_scale(scale: float) -> None:
    with pytest.raises(ValueError):
        ScaledClock(scale)


def test_make_clock() -> None:
    real = make_clock(1)
    assert type(real) is RealClock
    assert abs(real.timestamp() - time.time()) < 1
    assert type(make_clock()) is RealClock
    scaled = make_clock(10)
    assert isinstance(scaled, ScaledClock)
    assert scaled.scale == 10


@pytest.mark.parametrize("scale", [0, -2])
def test_make_clock_rejects_non_positive_scale(scale: float) -> None:
    with pytest.raises(ValueError):
        make_clock(scale)


def test_real_clock_reads_wall_time() -> None:
    clock = RealClock()
    assert abs(clock.timestamp() - time.time()) < 1
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=1)
