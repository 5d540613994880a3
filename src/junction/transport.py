"""Calls between services over their HTTP contracts.

A ``Transport`` maps a service name to an httpx transport: in the embedded runtime that is the
service's ASGI app in the same process (no sockets), in the distributed one a URL. Callers get a
``ServiceClient`` and never know which.
"""

from __future__ import annotations

from typing import Any

import httpx

from junction.errors import HttpError


class UpstreamError(HttpError):
    """A called service answered with an error status; carries its status and message."""


class ServiceClient:
    """JSON calls to one service; non-2xx answers raise UpstreamError with the service's message."""

    def __init__(self, name: str, client: httpx.AsyncClient) -> None:
        self.name = name
        self.http = client

    async def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send a request; the decoded JSON body of a 2xx answer."""
        response = await self.http.request(method, path, json=json, headers=headers)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise UpstreamError(message, status=response.status_code)
        if not response.content:
            return None
        return response.json()

    async def get(self, path: str, **kwargs: Any) -> Any:
        """GET path."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST path."""
        return await self.request("POST", path, json=json, **kwargs)

    async def put(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PUT path."""
        return await self.request("PUT", path, json=json, **kwargs)

    async def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """PATCH path."""
        return await self.request("PATCH", path, json=json, **kwargs)

    async def delete(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """DELETE path."""
        return await self.request("DELETE", path, json=json, **kwargs)


class Transport:
    """Service name → httpx client, built once and reused."""

    def __init__(self, timeout: float = 10.0) -> None:
        self._clients: dict[str, ServiceClient] = {}
        self.timeout = timeout

    def add_app(self, name: str, app: Any) -> None:
        """Reach ``name`` in-process through its ASGI app."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}",
                                   timeout=self.timeout)
        self._clients[name] = ServiceClient(name, client)

    def add_url(self, name: str, url: str) -> None:
        """Reach ``name`` over the network."""
        self._clients[name] = ServiceClient(name, httpx.AsyncClient(base_url=url, timeout=self.timeout))

    def client(self, name: str) -> ServiceClient:
        """The client for a service."""
        try:
            return self._clients[name]
        except KeyError:
            raise LookupError(f"no route to service {name!r}") from None

    async def close(self) -> None:
        """Close every client."""
        for client in self._clients.values():
            await client.http.aclose()
