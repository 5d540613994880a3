"""A time limit on a broker call that never waits for the abandoned call to wind down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


async def bounded(work: Awaitable[T], timeout: float) -> T:
    """The result of ``work``, or TimeoutError after ``timeout`` s, without waiting for ``work`` to wind down.

    (``asyncio.wait_for`` waits for the cancelled call to finish, which a client stuck in a group
    join may not do for minutes.)
    """
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_ignore_outcome)
        raise TimeoutError(f"no answer within {timeout} s")
    return task.result()


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
