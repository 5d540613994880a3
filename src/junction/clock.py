"""The platform clock: everything that reads time asks a Clock.

* ``RealClock``: wall time.
* ``ScaledClock``: wall time running ``scale`` times faster from the moment it was made (demos).
* ``VirtualClock``: stands still until a test advances it; ``advance`` steps from one sleeper's
  deadline to the next and lets the woken work settle before going on, so chained timers fire
  in order and at their own instants.

Work that the clock should wait for before it moves on (timer firing) runs inside ``clock.busy()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """Base clock: real time, with the hooks the virtual clock needs."""

    def __init__(self) -> None:
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def now(self) -> datetime:
        """The current instant (timezone-aware UTC)."""
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """The current instant as Unix seconds."""
        return self.now().timestamp()

    async def sleep_until(self, when: float) -> None:
        """Sleep until the clock reads ``when`` (Unix seconds)."""
        delay = when - self.timestamp()
        if delay > 0:
            await asyncio.sleep(delay)

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""
        await self.sleep_until(self.timestamp() + seconds)

    @contextlib.asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Mark work that a virtual clock waits for before it advances further."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if self._busy == 0:
                self._idle.set()


class RealClock(Clock):
    """Wall-clock time."""

    def timestamp(self) -> float:
        return time.time()


class ScaledClock(Clock):
    """Time that runs ``scale`` times faster than the wall clock from ``origin`` (Unix seconds).

    At ``origin`` platform time equals wall time; processes (or restarts) given the same origin
    and scale agree on platform time, so it never jumps back.
    """

    def __init__(self, scale: float, origin: float | None = None) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError("time scale must be positive")
        self.scale = scale
        self._origin_wall = time.time() if origin is None else origin
        self._origin = self._origin_wall

    def timestamp(self) -> float:
        return self._origin + (time.time() - self._origin_wall) * self.scale

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    async def sleep_until(self, when: float) -> None:
        delay = (when - self.timestamp()) / self.scale
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__()
        self._now = (start or datetime(2026, 1, 1, 8, 0, tzinfo=UTC)).timestamp()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.settle_hooks: list[Callable[[], Awaitable[None]]] = []  # e.g. "consumers caught up"

    def timestamp(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        await future

    async def settle(self) -> None:
        """Let woken work run until nothing marked busy is left and every settle hook is quiet."""
        for _ in range(5):
            await asyncio.sleep(0)
        while self._busy:
            await self._idle.wait()
            for _ in range(5):
                await asyncio.sleep(0)
        for hook in self.settle_hooks:
            await hook()

    async def advance(self, seconds: float | timedelta) -> None:
        """Move time forward, waking every sleeper on the way in deadline order."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        if step < 0:
            raise ValueError("a clock does not go back")
        target = self._now + step
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            when = self._sleepers[0][0]
            self._now = max(self._now, when)
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()


def make_clock(time_scale: float | None = None, origin: float | None = None) -> Clock:
    """The clock for a run: real, or scaled (from ``origin``) when a time scale other than 1 is given."""
    if time_scale is None or time_scale == 1:
        return RealClock()
    return ScaledClock(time_scale, origin)
