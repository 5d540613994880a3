"""Running work that waits on the virtual clock (backoffs) to its end, without sleeping in the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from junction.clock import VirtualClock

T = TypeVar("T")


def next_deadline(clock: VirtualClock) -> float | None:
    """The earliest deadline someone still sleeps until."""
    return min((when for when, _, future in clock._sleepers if not future.done()), default=None)


async def drive(clock: VirtualClock, work: Awaitable[T], horizon: float = 1.0, timeout: float = 30.0) -> T:
    """Run ``work`` to its end, moving the clock to each sleeper's deadline within ``horizon`` s as soon as
    one waits (a backoff); real I/O gets real time. Deadlines further away (time limits, idle timers) are
    left alone: a test reaches them with ``clock.advance``."""
    task = asyncio.ensure_future(work)
    give_up = time.monotonic() + timeout
    while not task.done():
        nearest = next_deadline(clock)
        if nearest is not None and nearest - clock.timestamp() <= horizon:
            await clock.advance(max(0.0, nearest - clock.timestamp()))
        else:
            await asyncio.wait({task}, timeout=0.001)
        if time.monotonic() > give_up:
            task.cancel()
            raise TimeoutError("the work did not finish")
    return task.result()
