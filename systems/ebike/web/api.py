"""Server-side GraphQL calls made on behalf of the browser that asked for a page.

A page handler forwards the browser's cookie to the gateway's own ``/graphql`` endpoint, in
process (no socket), so a page can never show more than its viewer may query, and the role checks,
session revocation and error texts stay in one place: the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request
from starlette.types import ASGIApp

GRAPHQL_PATH = "/graphql"


@dataclass(frozen=True)
class ApiError:
    """One entry of a GraphQL ``errors`` array."""

    message: str
    code: str | None = None
    path: tuple[str | int, ...] = ()


@dataclass
class Result:
    """What a query returned: data (possibly partial) and errors."""

    data: dict[str, Any]
    errors: list[ApiError] = field(default_factory=list)

    @property
    def unauthenticated(self) -> bool:
        return any(error.code == "UNAUTHENTICATED" for error in self.errors)


class Api:
    """The gateway's GraphQL API, called with the cookie of one browser request."""

    def __init__(self, request: Request, app: ASGIApp | None = None) -> None:
        self._request = request
        # The application that serves /graphql: the one this page is served by, unless given.
        self._app: ASGIApp = app if app is not None else request.scope["app"]
        # Set-Cookie headers the gateway answered (a revoked session clears the browser's cookie);
        # the page response passes them on.
        self.set_cookies: list[str] = []

    async def run(self, document: str, variables: dict[str, Any] | None = None) -> Result:
        """Run a query; GraphQL errors come back in the result, transport failures raise."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        cookie = self._request.headers.get("cookie")
        if cookie:
            headers["cookie"] = cookie
        client_address = self._request.client
        transport = httpx.ASGITransport(
            app=self._app,
            client=(client_address.host, client_address.port) if client_address else ("127.0.0.1", 0),
        )
        base = f"{self._request.url.scheme}://{self._request.url.netloc}"
        async with httpx.AsyncClient(transport=transport, base_url=base) as client:
            response = await client.post(GRAPHQL_PATH, json={"query": document, "variables": variables or {}},
                                         headers=headers)
        self.set_cookies.extend(response.headers.get_list("set-cookie"))
        try:
            body = response.json()
        except ValueError:
            return Result({}, [ApiError(f"the API answered HTTP {response.status_code}", "INTERNAL")])
        errors = [ApiError(str(e.get("message", "error")), (e.get("extensions") or {}).get("code"),
                           tuple(e.get("path") or ())) for e in body.get("errors") or []]
        return Result(body.get("data") or {}, errors)
