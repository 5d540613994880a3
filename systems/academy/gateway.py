"""The academy's edge (default port 8080): one public address for the client-facing services.

``/api/auth/login`` goes to auth, every other ``/api/**`` to bff, ``/ws/webinars/{id}`` is the live room
(``academy.rooms``), everything else is a page of ssr. Requests are forwarded with their method, path,
query, body and the headers that say who calls (``Authorization``, ``Cookie``); answers come back with
their status, body and the headers pages need (cookies, redirects). Bodies over 12 MiB are refused here
with 413 before they are read on (a proof document may have 10 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from academy.rooms import Rooms
from junction.http import read_body

if TYPE_CHECKING:
    from junction.runtime import Runtime

log = structlog.get_logger()

MAX_BODY = 12 << 20
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
REQUEST_HEADERS = ("authorization", "cookie", "content-type", "accept", "origin", "referer")
ANSWER_HEADERS = ("content-type", "location", "content-disposition", "cache-control")


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public routes (``System.gateway``)."""
    rooms = Rooms(runtime)

    def forwarding(service: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return await forward(runtime, service, request)

        return endpoint

    return [
        Route("/api/auth/login", forwarding("auth"), methods=["POST"]),
        Route("/api/{rest:path}", forwarding("bff"), methods=METHODS),
        WebSocketRoute("/ws/webinars/{webinar_id}", rooms.endpoint),
        Route("/{rest:path}", forwarding("ssr"), methods=METHODS),
    ]


async def forward(runtime: Runtime, service: str, request: Request) -> Response:
    """The service's answer to the request, as it came."""
    body = await read_body(request, limit=MAX_BODY)
    if body is None:
        return JSONResponse({"error": "request body too large"}, status_code=413)
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    if query := request.scope.get("query_string", b""):
        path = f"{path}?{query.decode('latin-1')}"
    headers = {name: value for name in REQUEST_HEADERS if (value := request.headers.get(name))}
    try:
        answer = await runtime.transport.client(service).http.request(request.method, path, content=body,
                                                                      headers=headers)
    except Exception as error:  # unreachable or timed out: the client hears so, never a trace
        log.warning("edge: service unavailable", service=service, path=request.url.path, error=repr(error))
        return JSONResponse({"error": "service unavailable"}, status_code=503)
    response = Response(answer.content, status_code=answer.status_code,
                        headers={k: v for k in ANSWER_HEADERS if (v := answer.headers.get(k))})
    for cookie in answer.headers.get_list("set-cookie"):
        response.raw_headers.append((b"set-cookie", cookie.encode("latin-1")))
    return response
