"""The pipeline's edge (default port 8080): authentication, routing to the services, the live dashboard.

Every route but ``/health`` needs an ``X-API-Key`` made by ``junction pipeline create-key`` or a bearer
JWT made by ``junction pipeline create-token``, else 401 ``{"error": "unauthorized"}``; the dashboard
page and its event stream also take the key as ``?key=`` (a browser's EventSource sends no headers).

Routes, each behind the platform's breaker (a sliding window of 20 calls, open at 50 % failures for
5 s, 3 trial calls), a 10 s time limit, and retries of GET only (POSTs create): ``/users`` → user,
``/ingest`` → processing, ``/analytics`` → analytics, ``/notifications`` → notification. When a
service cannot answer, 503 ``{"error": "service unavailable"}``.

The dashboard's charts are pushed over Server-Sent Events (``/dashboard/events``): every minute
aggregate and every new user as processing and user commit them (``junction.gateway.live``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from junction.gateway.live import LiveFeed
from junction.gateway.proxy import METHODS, ProxyEdge, ProxyRoute
from junction.gateway.resilience import Resilience, Retry, SlidingWindow
from junction.gateway.sse import sse_frame, sse_response
from junction.runtime import Runtime
from pipeline.contracts.api import MAX_BYTES, UNAUTHORIZED
from pipeline.contracts.events import MinuteAggregated, UserCreated
from pipeline.keys import KeyRing
from pipeline.services.analytics import iso_minute

POLICY = Resilience(
    breaker=SlidingWindow(size=20, failure_rate=0.5, open_for=5.0, half_open_calls=3),
    time_limit=10.0,
    retry=Retry(retries=2, methods={"GET"}, first=0.05, factor=2.0, max=0.2, jitter=0.25),
)
ROUTES = [ProxyRoute("/users", "user", POLICY), ProxyRoute("/ingest", "processing", POLICY),
          ProxyRoute("/analytics", "analytics", POLICY), ProxyRoute("/notifications", "notification", POLICY)]
DASHBOARD = Path(__file__).parent / "web" / "dashboard.html"


def unauthorized() -> Response:
    """The answer to a caller without a valid key or token."""
    return JSONResponse({"error": UNAUTHORIZED}, status_code=401)


def unavailable() -> Response:
    """The proxy's fallback: the service could not answer."""
    return JSONResponse({"error": "service unavailable"}, status_code=503)


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public API (``System.gateway``)."""
    keys = KeyRing(runtime.data_dir)
    edge = ProxyEdge(runtime, ROUTES, fallback=unavailable, max_body=MAX_BYTES)
    feed = LiveFeed(runtime.follower, runtime.spawn)

    def allowed(request: Request, query: bool = False) -> bool:
        return keys.allows(request.headers, runtime.clock.timestamp(),
                           request.query_params.get("key") if query else None)

    def endpoints(route: ProxyRoute) -> list[Route]:
        guard = edge.guards[route.prefix]

        async def forward(request: Request) -> Response:
            if not allowed(request):
                return unauthorized()
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BYTES:
                return JSONResponse({"error": f"request body over {MAX_BYTES} bytes"}, status_code=413)
            return await edge.forward(route, guard, request)

        return [Route(route.prefix, forward, methods=METHODS),
                Route(route.prefix + "/{rest:path}", forward, methods=METHODS)]

    async def dashboard(request: Request) -> Response:
        if not allowed(request, query=True):
            return unauthorized()
        return HTMLResponse(DASHBOARD.read_text())

    async def events(request: Request) -> Response:
        if not allowed(request, query=True):
            return unauthorized()
        subscription = await feed.subscribe("processing", "user",
                                            types={MinuteAggregated.event_name, UserCreated.event_name})

        async def frames() -> AsyncIterator[str]:
            try:
                async for envelope in subscription:
                    event = envelope.event
                    if isinstance(event, MinuteAggregated):
                        yield sse_frame({**event.model_dump(), "minute": iso_minute(event.minute)}, event="minute")
                    elif isinstance(event, UserCreated):
                        day = envelope.occurred_at.date().isoformat()
                        yield sse_frame({"userId": event.user_id, "day": day}, event="user")
            finally:
                await subscription.aclose()

        return sse_response(frames())

    async def not_found(request: Request) -> Response:
        return JSONResponse({"error": "not found"}, status_code=404)

    # last: any other path is a JSON 404 (the platform's own routes come before the edge's)
    return [Route("/dashboard", dashboard), Route("/dashboard/events", events),
            *(route for r in ROUTES for route in endpoints(r)), Route("/{path:path}", not_found, methods=METHODS)]
