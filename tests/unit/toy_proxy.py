"""A toy system behind a REST proxy edge: ``echo`` answers what it was sent; the gateway forwards ``/api/items``.

The echo's answer is ``method|path|query|content-type|body`` with the status and content-type the query
asks for (``?status=503&type=text/plain``), so a test can compare bytes and make the service fail on
demand; ``/api/slow`` never answers (for time limits); ``/api/headers`` answers the request's headers as
JSON pairs and sets two cookies, a ``Location`` and an ``X-Internal`` header. ``calls`` counts what reached the service.
``python -m tests.unit.toy_proxy PORT DATA_DIR`` serves the echo service alone, as ``junction serve`` would.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute

from junction.gateway.proxy import ProxyEdge, ProxyRoute
from junction.gateway.resilience import Resilience, Retry, SlidingWindow
from junction.runtime import Runtime, System
from junction.service import Service

FALLBACK = "Service Unavailable, please try again later"
POLICY = Resilience(breaker=SlidingWindow(size=10, failure_rate=0.5, open_for=5.0, half_open_calls=3),
                    time_limit=10.0, retry=Retry(retries=3, methods={"GET", "PUT", "DELETE"},
                                                 statuses={500, 502, 503, 504}, first=0.05, factor=2, max=0.2,
                                                 jitter=0.25))
calls: Counter[str] = Counter()  # method -> requests that reached the echo service (in this process)
edges: list[ProxyEdge] = []  # the edges built, latest last (tests inspect their breakers)

echo = Service("echo", worker=31)


async def answer(request: Request) -> Response:
    """Echo the request: status and content-type chosen by the query."""
    calls[request.method] += 1
    body = await request.body()
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))  # as the service declares it
    head = "|".join([request.method, path, request.url.query,
                     request.headers.get("content-type", "-")]).encode()
    status = int(request.query_params.get("status", "200"))
    return Response(head + b"|" + body, status_code=status,
                    headers={"content-type": request.query_params.get("type", "application/octet-stream")})


async def answer_item(item: str, request: Request) -> Response:
    """Echo a request to one item."""
    return await answer(request)


for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    echo.route(method, "/api/items")(answer)
    echo.route(method, "/api/items/{item}")(answer_item)


@echo.route("GET", "/api/slow")
async def slow(request: Request) -> Response:
    """Never answers (until cancelled)."""
    calls["slow"] += 1
    await asyncio.Event().wait()
    return Response(b"never")


@echo.route("GET", "/api/headers")
async def headers(request: Request) -> Response:
    """The request's headers (as pairs, repeated ones apart); an answer with headers to pass back or not."""
    calls["headers"] += 1
    response = JSONResponse(request.headers.items(), status_code=201,
                            headers={"location": "/api/items/1", "x-internal": "secret"})
    response.set_cookie("jwt", "token", httponly=True)
    response.set_cookie("theme", "dark")
    return response


def gateway(runtime: Runtime) -> list[BaseRoute]:
    """The edge: /api/items, /api/slow and /api/headers to echo, and /echo/** and /narrow/** (other header
    allow-lists) to echo without the prefix, each route with its own breaker."""
    edge = ProxyEdge(runtime, [ProxyRoute("/api/items", "echo", POLICY), ProxyRoute("/api/slow", "echo", POLICY),
                               ProxyRoute("/echo", "echo", POLICY, strip_prefix=True),
                               ProxyRoute("/api/headers", "echo", POLICY),
                               ProxyRoute("/narrow", "echo", POLICY, strip_prefix=True,
                                          request_headers=frozenset({"X-Tenant"}),
                                          answer_headers=frozenset({"x-internal"}))],
                     fallback=lambda: PlainTextResponse(FALLBACK, status_code=503))
    edges.append(edge)
    return edge.starlette_routes()


def system() -> System:
    """The toy proxy system."""
    return System("toyproxy", [echo], gateway=gateway)


if __name__ == "__main__":  # one process hosting the echo service, as `junction serve --service echo` does
    from junction.server import serve

    port, data = int(sys.argv[1]), Path(sys.argv[2])
    asyncio.run(serve(Runtime(system(), data, only=["echo"], edge=False), "127.0.0.1", port, run_file=False))
