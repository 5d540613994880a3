"""The social edge on port 9000 (the reference's edge-service) and the live graph page.

``/user/**``, ``/friend/**`` and ``/recommendation/**`` go to their services with the prefix stripped, as
the reference's Spring Cloud Gateway ``RewritePath`` does, each route behind its own circuit breaker and
time limit. ``/`` serves the graph page; ``/graph/events`` pushes every change of the graph to it (SSE)
once the recommendation graph has taken the change, so what the page then asks for already includes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from junction.events import Envelope
from junction.gateway.live import Broadcast, LiveFeed, Subscription
from junction.gateway.proxy import ProxyRoute, proxy_edge
from junction.gateway.resilience import Resilience, SlidingWindow
from junction.gateway.sse import sse_frame, sse_response
from junction.runtime import Runtime
from social.contracts.events import FriendAdded, FriendRemoved, UserCreated, UserUpdated
from social.web import PAGE

log = structlog.get_logger()

POLICY = Resilience(breaker=SlidingWindow(size=20, failure_rate=0.5, open_for=5.0, half_open_calls=3),
                    time_limit=10.0)
CHANGES = {UserCreated.event_name: "user", UserUpdated.event_name: "user",
           FriendAdded.event_name: "friend-added", FriendRemoved.event_name: "friend-removed"}


def fallback() -> Response:
    """The edge's answer when a service cannot answer: 503 in Spring's error shape."""
    return JSONResponse({"status": 503, "error": "Service Unavailable",
                         "message": "The service is unavailable, please try again later"}, status_code=503)


def change(envelope: Envelope) -> dict[str, Any]:
    """What the page needs of one event: its kind and payload."""
    return {"kind": CHANGES[envelope.type], **envelope.data}


class GraphChanges:
    """The graph's changes for every open page: the user and friend logs followed once, each change passed on
    when the recommendation graph has it."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.feed = LiveFeed(runtime.follower, runtime.spawn)
        self.changes: Broadcast[dict[str, Any]] = Broadcast()
        self._started: asyncio.Future[None] | None = None

    async def _ensure_following(self) -> None:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            self.runtime.spawn("social/graph-changes", self._follow(self._started))
        await asyncio.shield(self._started)

    async def _follow(self, started: asyncio.Future[None]) -> None:
        events = await self.feed.subscribe("user", "friend", types=CHANGES)
        started.set_result(None)
        recommendation = self.runtime.transport.client("recommendation")
        async with events:
            async for envelope in events:
                source = "user" if CHANGES[envelope.type] == "user" else "friend"
                try:
                    await recommendation.get(f"/v1/graph/caught-up?source={source}&event={envelope.id}")
                except Exception as error:  # pass the change on anyway: the page asks again on the next one
                    log.warning("graph change not confirmed by recommendation", error=repr(error))
                self.changes.publish(change(envelope))

    async def subscribe(self) -> Subscription[dict[str, Any]]:
        """A page's changes from now on (the logs followed from the first page on)."""
        await self._ensure_following()
        return self.changes.subscribe()


async def frames(changes: Subscription[dict[str, Any]]) -> AsyncIterator[str]:
    """One page's SSE frames: each change as it comes."""
    async with changes:
        async for change in changes:
            yield sse_frame(change)


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The edge: the three services' routes, the graph page and its change stream."""
    graph = GraphChanges(runtime)

    async def page(request: Request) -> Response:
        return Response(PAGE, media_type="text/html; charset=utf-8")

    async def events(request: Request) -> Response:
        return sse_response(frames(await graph.subscribe()))

    return [
        *proxy_edge(runtime, [ProxyRoute("/user", "user", POLICY, strip_prefix=True),
                              ProxyRoute("/friend", "friend", POLICY, strip_prefix=True),
                              ProxyRoute("/recommendation", "recommendation", POLICY, strip_prefix=True)],
                    fallback=fallback),
        Route("/", page), Route("/graph", page), Route("/graph/events", events),
    ]
