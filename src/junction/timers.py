"""Durable timers: rows "at T run handler N with payload P", fired by the platform clock.

A timer is deleted in the same transaction as its handler's effects, so a crash before commit
fires it again (at-least-once) and a crash after cannot fire it twice. A failing handler is
re-armed with backoff (in platform time) rather than lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from junction.clock import Clock
from junction.service import Handler
from junction.store import Batch, Store, Timer
from junction.uow import UnitOfWork, run_with_retries

log = structlog.get_logger()
MAX_BACKOFF = 60.0


class TimerWorker:
    """Fires one service's due timers."""

    def __init__(self, store: Store, clock: Clock, handlers: dict[str, Handler],
                 make_uow: Callable[[], UnitOfWork]) -> None:
        self.store = store
        self.clock = clock
        self.handlers = handlers
        self.make_uow = make_uow
        self.fired = 0

    async def run(self) -> None:
        """Fire timers until cancelled."""
        while True:
            async with self.clock.busy():
                await self.fire_due()
            next_due = await self.store.next_due()
            if next_due is not None and next_due <= self.clock.timestamp():
                continue  # armed while we were firing
            waits = [asyncio.ensure_future(self.store.timers_changed.wait())]
            if next_due is not None:
                waits.append(asyncio.ensure_future(self.clock.sleep_until(next_due)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting

    async def fire_due(self) -> None:
        """Fire every timer due by now, earliest first (timers they arm that are due fire too)."""
        while due := await self.store.due_timers(self.clock.timestamp()):
            for timer in due:
                await self._fire(timer)

    async def _fire(self, timer: Timer) -> None:
        handler = self.handlers.get(timer.name)
        if handler is None:
            log.error("no handler for timer", timer=timer.name)
            await self._rearm(timer, "no handler")
            return

        async def work(uow: UnitOfWork) -> None:
            uow.cancel(timer.id)
            uow.timer = timer
            await handler(timer.payload, uow)

        try:
            await run_with_retries(self.make_uow, work)
            self.fired += 1
        except Exception as error:
            log.exception("timer failed", timer=timer.name)
            await self._rearm(timer, f"{type(error).__name__}: {error}")

    async def _rearm(self, timer: Timer, error: str) -> None:
        attempts = int(timer.payload.get("_attempts", 0)) + 1
        payload = {**timer.payload, "_attempts": attempts, "_error": error}
        due = self.clock.timestamp() + min(MAX_BACKOFF, 2.0**attempts)
        await self.store.commit(Batch(timers=[Timer(timer.id, timer.name, due, payload)]))
