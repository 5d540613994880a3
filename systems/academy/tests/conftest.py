"""Fixtures of the academy's tests: the system behind its edge on a virtual clock, its mails in a real SMTP
sink the test starts (``JUNCTION_SMTP_PORT`` points notify-center's sender at it), and, for the room, the
edge served by uvicorn on a loopback port in the test's event loop.

``academy`` runs embedded here; ``acceptance/conftest.py`` runs it on both topologies (``junction.testing``):
distributed, every service keeps its state in a PostgreSQL database of the session's server, events go over
Kafka topics, and the per-recipient notifications over RabbitMQ queues of the session's node (names unique to
the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from academy.system import build
from junction.clock import VirtualClock
from junction.mail import MailSink
from junction.mail.testing import received
from junction.runtime import Runtime
from junction.testing import Distributed, running

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
PASSWORD = "password123"


class Academy:
    """A running academy driven through its edge, as a browser or an API client would drive it."""

    def __init__(self, runtime: Runtime, clock: VirtualClock, sink: MailSink) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sink = sink
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://academy.test")
        self._names = 0

    async def request(self, method: str, path: str, token: str | None = None, **options: Any) -> httpx.Response:
        """One call through the edge, as ``token``'s holder."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.request(method, path, headers=headers, **options)

    async def register(self, email: str, document: bytes = PDF, filename: str = "proof.pdf",
                       full_name: str | None = None, password: str = PASSWORD) -> httpx.Response:
        """``POST /api/auth/register`` with a document."""
        fields = {"email": email, "password": password, "fullName": full_name or email.split("@")[0].title(),
                  "licenceNumber": "L-" + email.split("@")[0]}
        return await self.http.post("/api/auth/register", data=fields,
                                    files={"document": (filename, document, "application/pdf")})

    async def login(self, email: str, password: str = PASSWORD) -> str:
        """A token for the user."""
        answer = await self.http.post("/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token

    async def staff(self, email: str = "admin@example.org", role: str = "ADMIN") -> str:
        """An approved admin (or analyst), as `junction academy create-admin` makes one; their token."""
        from academy.passwords import hash_password

        answer = await self.runtime.client("content").post("/users", json={
            "email": email, "passwordHash": hash_password(PASSWORD), "fullName": role.title(),
            "licenceNumber": "-", "role": role, "status": "APPROVED"})
        assert answer.status_code == 201, answer.text
        return await self.login(email)

    async def user(self, admin: str, email: str | None = None, name: str | None = None) -> tuple[str, str]:
        """A registered and approved user: (id, token)."""
        if email is None:
            self._names += 1
            email = f"doctor{self._names}@example.org"
        registered = await self.register(email, full_name=name)
        assert registered.status_code == 201, registered.text
        user_id: str = registered.json()["id"]
        approved = await self.request("POST", f"/api/admin/users/{user_id}/approve", admin)
        assert approved.status_code == 200, approved.text
        return user_id, await self.login(email)

    async def webinar(self, admin: str, minutes_ahead: float, duration: int = 10, points: int = 2,
                      title: str = "ECG basics", category: str = "cardiology") -> dict[str, Any]:
        """A webinar starting ``minutes_ahead`` from now on the platform clock."""
        starts = self.clock.now() + timedelta(minutes=minutes_ahead)
        answer = await self.request("POST", "/api/admin/webinars", admin, json={
            "title": title, "description": "With cases.", "category": category,
            "startsAt": starts.isoformat(), "durationMinutes": duration, "points": points})
        assert answer.status_code == 201, answer.text
        webinar: dict[str, Any] = answer.json()
        return webinar

    async def me(self, token: str) -> dict[str, Any]:
        """``GET /api/me``."""
        answer = await self.request("GET", "/api/me", token)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    async def status_of(self, webinar_id: str, token: str) -> str:
        """A webinar's status."""
        answer = await self.request("GET", f"/api/webinars/{webinar_id}", token)
        assert answer.status_code == 200, answer.text
        status: str = answer.json()["status"]
        return status

    async def mails(self) -> list[dict[str, Any]]:
        """The sink's mails, each as its Mailpit-compatible API gives it (its text too), newest first."""
        return await received(self.sink)

    async def settle(self) -> None:
        """Let every consumer, relay and the mail sender catch up."""
        await self.runtime.settle()

    async def advance(self, delta: timedelta) -> None:
        """Move the platform clock (timers fire on the way, the system settles after each)."""
        await self.clock.advance(delta)
        await self.settle()


@contextlib.asynccontextmanager
async def open_academy(data_dir: Path, sink: MailSink,
                       distributed: Distributed | None = None) -> AsyncIterator[Academy]:
    """The academy on the topology (``junction.testing``: queues on RabbitMQ when distributed), stopped afterwards."""
    clock = VirtualClock()
    async with running(build(), data_dir, distributed, clock=clock) as runtime:
        academy = Academy(runtime, clock, sink)
        try:
            yield academy
        finally:
            await academy.http.aclose()


@pytest.fixture
async def academy(tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Academy]:
    """The academy, embedded."""
    async with open_academy(tmp_path / "data", mail_sink) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``ws://127.0.0.1:<free port>`` serving ``app`` in this event loop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # waiting for the socket to listen: nothing else to wait on
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def receive(socket: ClientConnection, kind: str | None = None) -> dict[str, Any]:
    """The next message (of ``kind`` when given, skipping others), bounded wait."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if kind is None or message["type"] == kind:
            return message


async def room(url: str, webinar_id: str, token: str | None) -> ClientConnection:
    """A WebSocket to a webinar's room with the token in the query."""
    query = f"?token={token}" if token else ""
    return await connect(f"{url}/ws/webinars/{webinar_id}{query}")
