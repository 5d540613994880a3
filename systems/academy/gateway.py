"""The academy's edge (default port 8080): one public address for the client-facing services.

``/api/auth/login`` and ``/api/auth/logout`` go to auth, every other ``/api/**`` to bff,
``/ws/webinars/{id}`` is the live room (``academy.rooms``), everything else is a page of ssr. The platform's
proxy (``junction.gateway.proxy``) forwards requests with the headers that say who calls (``Authorization``,
``Cookie``) and answers with the headers pages need (cookies, redirects). Bodies over 12 MiB are refused here
with 413 before they are read on (a proof document may have 10 MB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, WebSocketRoute

from academy.rooms import Rooms
from junction.gateway.proxy import ProxyRoute, proxy_edge
from junction.gateway.resilience import Resilience

if TYPE_CHECKING:
    from junction.runtime import Runtime

MAX_BODY = 12 << 20
# The services answer their own errors (a 503 of bff's is the client's to see), so the edge neither
# retries nor trips a breaker on them: it only stands in when a service cannot be reached. No time limit
# here: it would run on the platform clock, which demos and tests speed up (a minute a second), while a
# login's argon2 takes real time; the transport's own timeout bounds a call over the network.
POLICY = Resilience(breaker=None, time_limit=None, retry=None, failure_statuses=())


def unavailable() -> Response:
    """The answer when a service cannot be reached."""
    return JSONResponse({"error": "service unavailable"}, status_code=503)


def too_large() -> Response:
    """The answer to a body over MAX_BODY."""
    return JSONResponse({"error": "request body too large"}, status_code=413)


def routes(runtime: Runtime) -> list[BaseRoute]:
    """The public routes (``System.gateway``)."""
    rooms = Rooms(runtime)
    return [
        WebSocketRoute("/ws/webinars/{webinar_id}", rooms.endpoint),
        *proxy_edge(runtime, [ProxyRoute("/api/auth/login", "auth", POLICY),
                              ProxyRoute("/api/auth/logout", "auth", POLICY), ProxyRoute("/api", "bff", POLICY),
                              ProxyRoute("/", "ssr", POLICY)],
                    fallback=unavailable, max_body=MAX_BODY, too_large=too_large),
    ]
