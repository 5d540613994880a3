"""The mail sink's HTTP face: a Mailpit-compatible JSON API, a live event stream and the web page.

    GET    /api/v1/messages?start=0&limit=50   {total, unread, count, start, messages: [summary...]}, newest first
    GET    /api/v1/message/{ID}                summary + Text, HTML ("latest" is the newest mail)
    GET    /api/v1/message/{ID}/raw            the mail as received
    DELETE /api/v1/messages                    every mail, or those of a JSON body {"IDs": [...]}
    GET    /api/events                         Server-Sent Events: "new" (a summary), "deleted"
    GET    /                                   the web page (live: it listens to /api/events)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from junction.gateway.sse import sse_response
from junction.mail.mailbox import Mailbox
from junction.mail.page import PAGE

MAX_BACKLOG = 1000  # events queued for one slow client before it is dropped (its browser reconnects)


class Feed:
    """Pushes the sink's events to every open event stream."""

    def __init__(self) -> None:
        self._clients: set[asyncio.Queue[str | None]] = set()

    def publish(self, event: str, data: Any) -> None:
        """Send an event to every client."""
        frame = f"event: {event}\ndata: {json.dumps(data)}\n\n"
        for queue in list(self._clients):
            if queue.qsize() >= MAX_BACKLOG:
                self._clients.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(frame)

    def close(self) -> None:
        """End every stream (the sink is stopping)."""
        for queue in self._clients:
            queue.put_nowait(None)
        self._clients.clear()

    async def stream(self) -> AsyncIterator[str]:
        """One client's frames until it goes away or the feed closes."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._clients.add(queue)
        try:
            while (frame := await queue.get()) is not None:
                yield frame
        finally:
            self._clients.discard(queue)


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    number = int(value)  # ValueError: answered 400 by the caller
    if number < 0:
        raise ValueError(name)
    return number


def build_app(mailbox: Mailbox, feed: Feed) -> Starlette:
    """The sink's Starlette app over ``mailbox``."""

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def messages(request: Request) -> Response:
        if request.method == "DELETE":
            ids = None
            body = await request.body()
            if body.strip():
                try:
                    chosen = json.loads(body).get("IDs")
                except (ValueError, AttributeError):
                    return PlainTextResponse("invalid request body", status_code=400)
                if chosen is not None and not (isinstance(chosen, list) and all(isinstance(i, str) for i in chosen)):
                    return PlainTextResponse("IDs must be a list of message IDs", status_code=400)
                ids = chosen or None
            deleted = mailbox.delete(ids)
            feed.publish("deleted", {"IDs": ids, "count": deleted})
            return PlainTextResponse("ok")
        try:
            start, limit = _int(request, "start", 0), _int(request, "limit", 50)
        except ValueError:
            return PlainTextResponse("start and limit must be non-negative integers", status_code=400)
        return JSONResponse(mailbox.listing(start, limit))

    async def message(request: Request) -> Response:
        found = mailbox.get(request.path_params["id"])
        if found is None:
            return PlainTextResponse("message not found", status_code=404)
        return JSONResponse(found)

    async def raw(request: Request) -> Response:
        found = mailbox.raw(request.path_params["id"])
        if found is None:
            return PlainTextResponse("message not found", status_code=404)
        return Response(found, media_type="text/plain; charset=utf-8")

    async def events(request: Request) -> Response:
        return sse_response(feed.stream())

    async def livez(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/", page), Route("/livez", livez), Route("/api/events", events),
        Route("/api/v1/messages", messages, methods=["GET", "DELETE"]),
        Route("/api/v1/message/{id}", message), Route("/api/v1/message/{id}/raw", raw),
    ])
