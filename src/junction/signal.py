"""A level-free wake-up signal: ``wait`` returns at the next ``notify`` (or after a timeout).

Built on plain futures rather than ``asyncio.Event`` + ``wait_for`` so that cancelling a waiter
is immediate and a notify never stays latched for a waiter that arrives later.
"""

from __future__ import annotations

import asyncio


class Signal:
    """Wake every current waiter."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        """Wake everyone waiting now."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, timeout: float | None = None) -> None:
        """Return at the next notify, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        handle = loop.call_later(timeout, _release, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._waiters.discard(waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
