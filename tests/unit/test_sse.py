"""Server-sent events: frames as they come, keep-alive comments in the silences, nothing lost to them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from junction.gateway.sse import keeping_alive, sse_frame, sse_response


async def slow(values: list[int], pause: float) -> AsyncIterator[int]:
    for value in values:
        await asyncio.sleep(pause)
        yield value


async def test_silences_become_none_and_every_item_still_arrives_in_order() -> None:
    seen = [item async for item in keeping_alive(slow([1, 2, 3], 0.05), every=0.01)]
    assert [i for i in seen if i is not None] == [1, 2, 3]
    assert seen.count(None) >= 3  # about four silences before each item
    assert [item async for item in keeping_alive(slow([1, 2], 0), every=10)] == [1, 2]  # none when never quiet


def test_a_frame_is_json_under_its_event() -> None:
    assert sse_frame({"a": 1}) == 'data: {"a":1}\n\n'
    frame = sse_frame([1, "x"], event="minute")
    assert frame.startswith("event: minute\ndata: ") and json.loads(frame.split("data: ")[1]) == [1, "x"]


async def test_the_response_starts_with_retry_and_keeps_alive() -> None:
    async def frames() -> AsyncIterator[str]:
        await asyncio.sleep(0.05)
        yield sse_frame(1)

    response = sse_response(frames(), keep_alive=0.01, retry_ms=500)
    assert response.media_type == "text/event-stream" and response.headers["cache-control"] == "no-cache"
    body = [chunk async for chunk in response.body_iterator]
    assert body[0] == "retry: 500\n\n" and ": keep-alive\n\n" in body and body[-1] == "data: 1\n\n"
