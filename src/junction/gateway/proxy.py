"""A REST edge: a system's gateway that forwards public paths to its services, each route behind its own policy.

    POLICY = Resilience(breaker=SlidingWindow(size=10, failure_rate=0.5, open_for=5.0, half_open_calls=3),
                        time_limit=10.0, retry=Retry(retries=3, methods={"GET", "PUT", "DELETE"}))

    def gateway(runtime: Runtime) -> list[BaseRoute]:            # System(gateway=gateway)
        return proxy_edge(runtime, [ProxyRoute("/api/order", "order", POLICY)],
                          fallback=lambda: PlainTextResponse("Service Unavailable, please try again later", 503))

A route forwards its prefix and every path under it, with any method (a GET may carry a body), the
path and query string unchanged, the body bytes, the content-type and the request headers of its
allow-list (``request_headers``: by default who calls and what they accept, ``Authorization`` and
``Cookie`` included), through the runtime's transport (in-process when the service is embedded, HTTP
when another process hosts it), and answers the service's status, body, content-type and the answer
headers of its other allow-list (``answer_headers``: by default ``Set-Cookie``, each one, ``Location``,
caching and download headers). The service declares the same public paths, or the route strips its
prefix (``strip_prefix``) and the service keeps paths of its own. The prefix ``/`` routes every path
(a catch-all, listed last).
When the route's breaker is open, the time limit passes, the retries run out on a failure status, or
the service cannot be reached, the route answers ``fallback()``, whatever the method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from junction.gateway.resilience import CircuitOpen, Guard, Resilience
from junction.transport import Answer, header_bytes

if TYPE_CHECKING:
    from junction.runtime import Runtime

log = structlog.get_logger()

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_BODY = 10 << 20  # the edge holds a request body in memory: refuse larger ones before reading on
REQUEST_HEADERS = frozenset({"accept", "accept-language", "authorization", "cookie", "if-match", "if-modified-since",
                             "if-none-match", "origin", "referer"})
ANSWER_HEADERS = frozenset({"cache-control", "content-disposition", "content-language", "etag", "last-modified",
                            "location", "retry-after", "set-cookie", "vary", "www-authenticate"})
# The edge writes these itself (or they describe one hop only), so a route may not pass them on: a forwarded
# content-length or content-encoding would contradict the body the edge actually sends.
NOT_FORWARDED = frozenset({"connection", "content-encoding", "content-length", "content-type", "host", "keep-alive",
                           "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding",
                           "upgrade"})


def unavailable() -> Response:
    """The default fallback: 503 in plain text."""
    return PlainTextResponse("Service Unavailable", status_code=503)


def too_large() -> Response:
    """The default answer to a body over the limit: 413 in plain text."""
    return PlainTextResponse("Request body too large", status_code=413)


def _header_names(names: frozenset[str]) -> frozenset[str]:
    lowered = frozenset(name.lower() for name in names)
    if refused := sorted(lowered & NOT_FORWARDED):
        raise ValueError(f"the edge does not forward {refused}: it writes them itself (content-type always goes)")
    return lowered


@dataclass(frozen=True)
class ProxyRoute:
    """Forward ``prefix`` and every path under it to ``service``, protected by ``policy``."""

    prefix: str
    service: str
    policy: Resilience = field(default_factory=Resilience)
    # Forward the path without the prefix (Spring Cloud Gateway's RewritePath): /user/v1/users -> /v1/users,
    # so the service keeps its own paths; otherwise the service declares the same public paths.
    strip_prefix: bool = False
    request_headers: frozenset[str] = REQUEST_HEADERS  # passed on to the service when the client sends them
    answer_headers: frozenset[str] = ANSWER_HEADERS  # passed back to the client when the service answers them

    def __post_init__(self) -> None:
        if not self.prefix.startswith("/") or (self.prefix.endswith("/") and self.prefix != "/"):
            raise ValueError(f"a proxy prefix starts with '/' and does not end with one (or is '/'): {self.prefix!r}")
        object.__setattr__(self, "request_headers", _header_names(frozenset(self.request_headers)))
        object.__setattr__(self, "answer_headers", _header_names(frozenset(self.answer_headers)))


class ProxyEdge:
    """The proxy routes of one runtime; ``guards`` holds each route's live breaker (by prefix)."""

    def __init__(self, runtime: Runtime, routes: list[ProxyRoute], fallback: Callable[[], Response] = unavailable,
                 max_body: int = MAX_BODY, too_large: Callable[[], Response] = too_large) -> None:
        self.transport = runtime.transport
        self.routes = list(routes)
        self.fallback = fallback
        self.max_body = max_body
        self.too_large = too_large
        prefixes = [r.prefix for r in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"a proxy prefix is routed twice: {prefixes}")
        self.guards = {r.prefix: r.policy.guard(runtime.clock, name=r.prefix) for r in self.routes}

    def starlette_routes(self) -> list[BaseRoute]:
        """Starlette routes: each prefix itself and everything under it, every method."""
        served: list[BaseRoute] = []
        for route in self.routes:
            endpoint = self._endpoint(route)
            if route.prefix == "/":  # "/{rest:path}" matches "/" itself too
                served.append(Route("/{rest:path}", endpoint, methods=METHODS))
                continue
            served.append(Route(route.prefix, endpoint, methods=METHODS))
            served.append(Route(route.prefix + "/{rest:path}", endpoint, methods=METHODS))
        return served

    def _endpoint(self, route: ProxyRoute) -> Callable[[Request], Any]:
        guard = self.guards[route.prefix]

        async def endpoint(request: Request) -> Response:
            return await self.forward(route, guard, request)

        return endpoint

    async def forward(self, route: ProxyRoute, guard: Guard, request: Request) -> Response:
        """Send the request on to the route's service under its policy; its answer, or the fallback."""
        body = await self._body(request)
        if body is None:
            return self.too_large()
        # The path as the client encoded it (uvicorn keeps it in raw_path), so the service decodes it once.
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if raw else request.url.path
        if route.strip_prefix and route.prefix != "/":
            path = path[len(route.prefix):] or "/"
        if query := request.scope.get("query_string", b""):
            path = f"{path}?{query.decode('latin-1')}"
        content_type = request.headers.get("content-type")
        wanted = route.request_headers
        headers = [(name, value) for name, value in request.headers.items() if name in wanted]

        async def attempt() -> Answer:
            answer: Answer = await self.transport.client(route.service).forward(
                request.method, path, body, content_type, headers)
            return answer

        try:
            answer = await guard.call(request.method, attempt, status=lambda a: a.status)
        except CircuitOpen:
            log.debug("proxy fallback: circuit open", route=route.prefix, service=route.service)
            return self.fallback()
        except Exception as error:  # unreachable, timed out, failing after the retries: the fallback answers
            log.warning("proxy fallback", route=route.prefix, service=route.service, method=request.method,
                        error=repr(error))
            return self.fallback()
        response = Response(answer.body, status_code=answer.status,
                            headers={"content-type": answer.content_type} if answer.content_type else None)
        passed = route.answer_headers
        response.raw_headers.extend((header_bytes(name), header_bytes(value))
                                    for name, value in answer.headers if name in passed)
        return response

    async def _body(self, request: Request) -> bytes | None:
        """The request body, or None when it is larger than ``max_body``."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


def proxy_edge(runtime: Runtime, routes: list[ProxyRoute], fallback: Callable[[], Response] = unavailable,
               max_body: int = MAX_BODY, too_large: Callable[[], Response] = too_large) -> list[BaseRoute]:
    """A REST gateway's routes (for ``System.gateway``): every ``ProxyRoute`` forwarded under its own policy."""
    return ProxyEdge(runtime, routes, fallback, max_body, too_large).starlette_routes()


__all__ = ["ANSWER_HEADERS", "MAX_BODY", "REQUEST_HEADERS", "ProxyEdge", "ProxyRoute", "proxy_edge", "too_large",
           "unavailable"]
