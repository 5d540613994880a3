"""The ebike web UI: server-rendered pages, a city map in SVG, and a little hand-written JavaScript.

The gateway mounts ``web_routes()`` at ``/``. Pages read their data from the gateway's own GraphQL
API with the caller's cookie (see ``api``), so the UI has no access path the API does not have.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from ebike.web.pages import routes

__all__ = ["web_routes"]


def web_routes() -> list[BaseRoute]:
    """The pages and the ``/static`` mount, to be served at the root of the gateway."""
    return routes()
