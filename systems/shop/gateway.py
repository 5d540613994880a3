"""The shop's edge on port 9000: the reference's routes forwarded to the services, Resilience4j-style.

Each route has its own circuit breaker (a sliding window of 10 calls, open at 50 % failures for 5 s,
3 trial calls half-open), a 10 s time limit, and retries of GET, PUT and DELETE only (3, on 500, 502,
503, 504 and connection errors, backing off 50 → 100 → 200 ms with jitter 0.25). Whatever fails, for
any method, the answer is the reference's fallback: 503 ``Service Unavailable, please try again later``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from junction.gateway.proxy import ProxyRoute, proxy_edge
from junction.gateway.resilience import Resilience, Retry, SlidingWindow
from junction.runtime import Runtime
from shop.contracts.api import UNAVAILABLE

POLICY = Resilience(
    breaker=SlidingWindow(size=10, failure_rate=0.5, open_for=5.0, half_open_calls=3),
    time_limit=10.0,
    retry=Retry(retries=3, methods={"GET", "PUT", "DELETE"}, first=0.05, factor=2.0, max=0.2, jitter=0.25),
)


def fallback() -> Response:
    """The reference's fallback answer, whatever the method."""
    return PlainTextResponse(UNAVAILABLE, status_code=503)


async def fallback_route(request: Request) -> Response:
    """``/fallbackRoute``, the reference's forward target, answered for any method."""
    return fallback()


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public API: /api/order/** to order, /api/inventory/** to inventory."""
    return [
        *proxy_edge(runtime, [ProxyRoute("/api/order", "order", POLICY),
                              ProxyRoute("/api/inventory", "inventory", POLICY)], fallback=fallback),
        Route("/fallbackRoute", fallback_route, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
    ]
