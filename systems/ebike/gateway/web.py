"""What ``/`` serves until the web UI exists: a placeholder page pointing at the API.

The web UI plugs in through ``gateway_routes(web=...)`` in ``ebike.system``: a function that takes
the Gateway and returns its routes (it can run GraphQL in-process with
``gateway.graphql.execute(query, variables, context=await gateway.context(request))``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from ebike.gateway.app import Gateway

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ebike</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>ebike</h1>
<p>The web UI comes next. The GraphQL API is at <a href="/graphql"><code>/graphql</code></a>
(<code>POST</code>, <code>Content-Type: application/json</code>; subscriptions over WebSocket with
graphql-transport-ws).</p>
<p>Create the first admin with <code>junction ebike create-admin NAME</code>.</p>
</body></html>
"""


async def index(request: Request) -> HTMLResponse:
    """The placeholder page."""
    return HTMLResponse(PAGE)


def placeholder_routes(gateway: Gateway) -> list[BaseRoute]:
    """``GET /``: the placeholder page."""
    return [Route("/", index)]
