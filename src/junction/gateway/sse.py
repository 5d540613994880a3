"""Server-sent events: live state pushed to a page, with the keep-alive comments proxies need.

    async def frames() -> AsyncIterator[str]:
        async for change in changes:
            yield sse_frame(change, event="change")

    return sse_response(frames())

A quiet stream gets a comment line every ``keep_alive`` seconds, so proxies and browsers keep it open; the
client reconnects after ``retry_ms`` when it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from starlette.responses import StreamingResponse

T = TypeVar("T")

KEEP_ALIVE = 15.0  # seconds of silence after which a comment line is sent


async def keeping_alive(items: AsyncIterator[T], every: float = KEEP_ALIVE) -> AsyncIterator[T | None]:
    """``items`` as they come, and None whenever ``every`` seconds pass without one. An item being waited for
    is never lost to a keep-alive (the wait goes on; it is not cancelled)."""
    pending = asyncio.ensure_future(anext(items))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            yield item
            pending = asyncio.ensure_future(anext(items))
    finally:
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending


def sse_frame(data: Any, event: str | None = None) -> str:
    """One event: ``data`` as JSON, under ``event`` when named."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _with_keep_alive(frames: AsyncIterator[str], keep_alive: float, retry_ms: int) -> AsyncIterator[str]:
    yield f"retry: {retry_ms}\n\n"
    async for frame in keeping_alive(frames, keep_alive):
        yield ": keep-alive\n\n" if frame is None else frame


def sse_response(frames: AsyncIterator[str], keep_alive: float = KEEP_ALIVE, retry_ms: int = 1000) -> StreamingResponse:
    """A ``text/event-stream`` answer of ``frames`` (``sse_frame`` texts), kept alive while quiet."""
    return StreamingResponse(_with_keep_alive(frames, keep_alive, retry_ms), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
