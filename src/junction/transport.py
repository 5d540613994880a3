"""Calls between services over their HTTP contracts.

A ``Transport`` maps a service name to where it answers: in the embedded runtime the service's
ASGI app in the same process (no sockets), in the distributed one a URL. Callers get a
``ServiceClient`` and never know which.

In-process calls go straight through the ASGI interface (``AsgiCaller``) instead of httpx's
``ASGITransport``: a call is still a full HTTP request to the service's app (routing, validation,
status codes), but without building httpx request and response objects, which cost more than
the handler itself on the gateway's hot paths. ``ServiceClient.http`` (httpx) remains for tests
and tools.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx

from junction.errors import HttpError
from junction.grpc.client import GrpcChannels

Message = MutableMapping[str, Any]
Headers = Mapping[str, str] | Sequence[tuple[str, str]]  # pairs keep a repeated header (two cookies) apart


def _pairs(headers: Headers | None) -> list[tuple[str, str]]:
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def header_bytes(text: str) -> bytes:
    """A header name or value as ASGI carries it."""
    # Latin-1 gives back the bytes a client sent (Starlette decodes headers so); text beyond it goes as UTF-8.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


class AsgiCaller:
    """Sends one HTTP request to an ASGI app in this process; the status and body."""

    def __init__(self, name: str, app: Any) -> None:
        self.name = name
        self.app = app
        self._host = (b"host", name.encode())

    async def __call__(self, method: str, path: str, body: bytes,
                       headers: Headers | None = None) -> tuple[int, bytes]:
        """Call the app; its status code and body."""
        status, _, content = await self.respond(method, path, body, headers)
        return status, content

    async def respond(self, method: str, path: str, body: bytes, headers: Headers | None = None,
                      content_type: str = "application/json") -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Call the app; its status code, raw response headers and body."""
        path, _, query = path.partition("?")
        raw_headers = [self._host, (b"content-length", str(len(body)).encode())]
        if content_type:
            raw_headers.append((b"content-type", content_type.encode("latin-1")))
        raw_headers.extend((header_bytes(k.lower()), header_bytes(v)) for k, v in _pairs(headers))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method.upper(),
            "scheme": "http", "path": unquote(path), "raw_path": path.encode(), "query_string": query.encode(),
            "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 0), "server": (self.name, 80),
        }
        request: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> Message:
            if request:
                return request.pop()
            await asyncio.get_running_loop().create_future()  # the client never disconnects first
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers.extend(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, response_headers, b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Answer:
    """A service's answer as it came: status, body bytes, content-type and every header (names lower-cased)."""

    status: int
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...] = ()


class UpstreamError(HttpError):
    """A called service answered with an error status; carries its status and message."""


class ServiceClient:
    """JSON calls to one service; non-2xx answers raise UpstreamError with the service's message."""

    def __init__(self, name: str, client: httpx.AsyncClient, caller: AsgiCaller | None = None) -> None:
        self.name = name
        self.http = client
        self._caller = caller

    async def request(self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None) -> Any:
        """Send a request; the decoded JSON body of a 2xx answer."""
        if self._caller is not None:
            body = b"" if json is None else jsonlib.dumps(json, separators=(",", ":")).encode()
            status, content = await self._caller(method, path, body, headers)
        else:
            response = await self.http.request(method, path, json=json, headers=headers)
            status, content = response.status_code, response.content
        if status >= 400:
            try:
                message = jsonlib.loads(content).get("error", content.decode())
            except (ValueError, AttributeError):
                message = content.decode(errors="replace")
            raise UpstreamError(message, status=status)
        if not content:
            return None
        return jsonlib.loads(content)

    async def forward(self, method: str, path: str, body: bytes, content_type: str | None,
                      headers: Headers | None = None) -> Answer:
        """Send a request as it came (any method, body bytes, content-type and ``headers``); the answer as it is."""
        pairs = _pairs(headers)
        if self._caller is not None:
            status, raw, content = await self._caller.respond(method, path, body, pairs,
                                                              content_type=content_type or "")
            answer_headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw)
        else:
            if content_type:
                pairs.append(("content-type", content_type))
            response = await self.http.request(method, path, content=body, headers=pairs)
            status, content, answer_headers = response.status_code, response.content, tuple(
                response.headers.multi_items())
        answer_type = next((v for k, v in answer_headers if k == "content-type"), None)
        return Answer(status, content, answer_type, answer_headers)

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
        self.channels = GrpcChannels()  # the services' gRPC contracts, where they have one (``junction.grpc``)

    def add_app(self, name: str, app: Any) -> None:
        """Reach ``name`` in-process through its ASGI app."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}",
                                   timeout=self.timeout)
        self._clients[name] = ServiceClient(name, client, AsgiCaller(name, app))

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
        await self.channels.close()
