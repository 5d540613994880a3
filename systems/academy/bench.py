"""``junction bench academy``: the live room's chat fan-out and the reminder pipeline, embedded, in one run.

* **Chat fan-out**: ``VIEWERS`` WebSocket clients (200) in one LIVE room, served by uvicorn on loopback from
  the system's edge. One message at a time is sent by a viewer; its latency is the time until the last of
  the viewers has received it (p50 and p99 over ``MESSAGES``), and, per delivery, until each one has. The
  clients run in the same process as the server, so their own decoding is part of the figure.
* **Reminders**: ``SUBSCRIBERS`` (10,000) approved users follow a category; a webinar of it is scheduled
  61 minutes ahead and the virtual clock moves a minute on: scheduler's timer fires, notify-runner writes one
  queue message per recipient, notify-center stores each on-site notification and queues its e-mail, and
  the sender delivers every mail over SMTP to a mail sink in a process of its own. Reported: on-site
  notifications per second and mails accepted by the SMTP server per second, from the timer's instant.

The users are written straight into content's tables and their tokens minted by auth's code (setup, not
measured: 10,000 argon2 hashes would take minutes and measure nothing of the system).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from websockets.asyncio.client import ClientConnection, connect

from academy.services import auth, content, notify_center
from academy.system import build
from junction.bench import percentile
from junction.clock import VirtualClock
from junction.mail.process import mail_sink_process
from junction.queues import QueueSources
from junction.runtime import Runtime

VIEWERS = 200
MESSAGES = 200
SUBSCRIBERS = 10_000


@contextlib.asynccontextmanager
async def running(data_dir: Path, clock: VirtualClock) -> AsyncIterator[Runtime]:
    """The academy embedded, wired as `junction run` wires it."""
    sources = QueueSources()
    runtime = sources.bind(Runtime(build(), data_dir, clock=clock, source_factory=sources, poll_interval=0.05))
    async with runtime:
        yield runtime


async def approved_users(runtime: Runtime, count: int, category: str | None = None, prefix: str = "u") -> list[str]:
    """``count`` approved users written into content's tables (following ``category`` when given); their ids."""
    store = runtime.service("content")
    ids = [f"{prefix}{n:05d}" for n in range(count)]
    now = runtime.clock.timestamp()
    for start in range(0, count, 2_000):
        chunk = ids[start:start + 2_000]
        uow = store.uow()
        uow.execute(content.users.insert().values([
            {"id": i, "email": f"{i}@example.org", "password_hash": "-", "full_name": f"Viewer {i}",
             "licence_number": i, "role": "USER", "status": "APPROVED", "created_at": now} for i in chunk]))
        if category is not None:
            uow.execute(content.category_subscriptions.insert().values(
                [{"category": category, "user_id": i} for i in chunk]))
        await uow.commit()
    return ids


async def tokens(runtime: Runtime, ids: list[str], role: str = "USER") -> list[str]:
    """Tokens for ``ids``, as auth issues them at login (their sessions committed)."""
    uow = runtime.service("auth").uow()
    issued = [await auth.issue(uow, user_id, role) for user_id in ids]
    await uow.commit()
    return issued


async def staff_token(runtime: Runtime) -> str:
    """An admin's token."""
    (admin,) = await approved_users(runtime, 1, prefix="admin")
    uow = runtime.service("content").uow()
    uow.execute(content.users.update().where(content.users.c.id == admin).values(role="ADMIN"))
    await uow.commit()
    return (await tokens(runtime, [admin], "ADMIN"))[0]


async def serve(app: Any) -> tuple[Any, asyncio.Task[None], int]:
    """uvicorn serving ``app`` on a free loopback port."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           ws_max_queue=1024))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def chat_fan_out(runtime: Runtime, clock: VirtualClock, viewers: int, messages: int) -> dict[str, Any]:
    """p50/p99 of the time until every viewer (and each viewer) received a chat message."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://bench")
    admin = await staff_token(runtime)
    ids = await approved_users(runtime, viewers)
    viewer_tokens = await tokens(runtime, ids)
    starts = (clock.now() + timedelta(minutes=1)).isoformat()
    webinar = (await http.post("/api/admin/webinars", headers={"Authorization": f"Bearer {admin}"}, json={
        "title": "Bench", "category": "bench", "startsAt": starts, "durationMinutes": 600, "points": 1})).json()
    await clock.advance(timedelta(minutes=1))
    await runtime.settle()
    server, task, port = await serve(runtime.app)
    arrivals: dict[int, list[float]] = {n: [] for n in range(messages)}
    everyone = asyncio.Event()
    sockets: list[ClientConnection] = []

    async def read(socket: ClientConnection) -> None:
        async for raw in socket:
            message = json.loads(raw)
            if message["type"] == "chat":
                n = int(message["text"])
                arrivals[n].append(time.perf_counter())
                if len(arrivals[n]) == viewers:
                    everyone.set()

    try:
        for token in viewer_tokens:
            socket = await connect(f"ws://127.0.0.1:{port}/ws/webinars/{webinar['id']}?token={token}",
                                   max_queue=None)
            sockets.append(socket)
        readers = [asyncio.create_task(read(s)) for s in sockets]
        await asyncio.sleep(0.5)  # let the presence broadcasts of the joins drain before measuring
        last: list[float] = []
        each: list[float] = []
        for n in range(messages):
            everyone.clear()
            sender = sockets[n % viewers]  # the rate limit is per user: spread the senders
            sent = time.perf_counter()
            await sender.send(json.dumps({"type": "chat", "text": str(n)}))
            await asyncio.wait_for(everyone.wait(), 30)
            last.append((max(arrivals[n]) - sent) * 1000)
            each.extend((t - sent) * 1000 for t in arrivals[n])
        for reader in readers:
            reader.cancel()
    finally:
        for socket in sockets:
            with contextlib.suppress(Exception):
                await socket.close()
        server.should_exit = True
        await task
        await http.aclose()
    return {"viewers": viewers, "messages": messages,
            "all_received_p50_ms": round(percentile(last, 0.5), 2),
            "all_received_p99_ms": round(percentile(last, 0.99), 2),
            "delivery_p50_ms": round(percentile(each, 0.5), 2), "delivery_p99_ms": round(percentile(each, 0.99), 2)}


async def count(store: Any, query: Any) -> int:
    """A ``count()`` query's answer."""
    row = await store.fetch_one(query)
    return int(row["n"]) if row is not None else 0


async def reminders(runtime: Runtime, clock: VirtualClock, subscribers: int) -> dict[str, Any]:
    """On-site notifications and mails per second for one webinar's reminder to ``subscribers`` people."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://bench")
    admin = await staff_token(runtime)
    await approved_users(runtime, subscribers, category="cardiology")
    starts = (clock.now() + timedelta(minutes=61)).isoformat()
    answer = await http.post("/api/admin/webinars", headers={"Authorization": f"Bearer {admin}"}, json={
        "title": "Reminder bench", "category": "cardiology", "startsAt": starts, "durationMinutes": 30, "points": 1})
    assert answer.status_code == 201, answer.text
    await runtime.settle()
    center = runtime.service("notify-center").store
    stored = select(func.count().label("n")).select_from(notify_center.notifications)
    sent = select(func.count().label("n")).select_from(notify_center.mailer.table).where(
        notify_center.mailer.table.c.sent_at.is_not(None))
    # Delivering 10,000 mails takes longer than a settle may wait: the clock moves without settling, and the
    # delivery is watched here instead.
    clock.settle_hooks.remove(runtime.settle)
    started = time.perf_counter()
    advancing = asyncio.create_task(clock.advance(timedelta(minutes=1)))  # the reminder's timer fires
    onsite_at = mailed_at = None
    while onsite_at is None or mailed_at is None:
        await asyncio.sleep(0.05)
        if onsite_at is None and await count(center, stored) >= subscribers:
            onsite_at = time.perf_counter() - started
        if mailed_at is None and await count(center, sent) >= subscribers:
            mailed_at = time.perf_counter() - started
    await advancing
    await http.aclose()
    return {"subscribers": subscribers, "onsite_s": round(onsite_at, 2), "mailed_s": round(mailed_at, 2),
            "onsite_per_s": round(subscribers / onsite_at), "mails_per_s": round(subscribers / mailed_at)}


async def run(console: Console, quick: bool) -> dict[str, Any]:
    """Both scenarios, each on a fresh system."""
    viewers, messages, subscribers = (50, 50, 1_000) if quick else (VIEWERS, MESSAGES, SUBSCRIBERS)
    with tempfile.TemporaryDirectory() as tmp:
        async with mail_sink_process(Path(tmp) / "mail") as smtp_port:
            previous = os.environ.get("JUNCTION_SMTP_PORT")
            os.environ["JUNCTION_SMTP_PORT"] = str(smtp_port)
            try:
                clock = VirtualClock()
                async with running(Path(tmp) / "chat", clock) as runtime:
                    chat = await chat_fan_out(runtime, clock, viewers, messages)
                clock = VirtualClock()
                async with running(Path(tmp) / "reminders", clock) as runtime:
                    remind = await reminders(runtime, clock, subscribers)
            finally:
                if previous is None:
                    os.environ.pop("JUNCTION_SMTP_PORT", None)
                else:
                    os.environ["JUNCTION_SMTP_PORT"] = previous
    table = Table("scenario", "size", "p50 (ms)", "p99 (ms)", "per second")
    table.add_row("chat: all viewers received", f"{chat['viewers']} viewers", f"{chat['all_received_p50_ms']:.2f}",
                  f"{chat['all_received_p99_ms']:.2f}", "")
    table.add_row("chat: one delivery", f"{chat['messages']} messages", f"{chat['delivery_p50_ms']:.2f}",
                  f"{chat['delivery_p99_ms']:.2f}", "")
    table.add_row("reminders on-site", f"{subscribers:,} subscribers", "", "", f"{remind['onsite_per_s']:,}")
    table.add_row("reminder e-mails (SMTP)", f"{subscribers:,} subscribers", "", "", f"{remind['mails_per_s']:,}")
    console.print(table)
    console.print("Embedded (SQLite). Chat: WebSocket clients in the same process as the edge; a message's latency "
                  "is until the last viewer has it. Reminders: from the reminder's timer to every notification "
                  "stored / every mail accepted by a mail sink in its own process.")
    return {"benchmark": "academy", "chat": chat, "reminders": remind}
