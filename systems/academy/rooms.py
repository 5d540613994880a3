"""The live room's WebSocket ``/ws/webinars/{id}``, served at the edge next to the pages (live's face).

Protocol (spec section 0): the client sends ``{"type":"chat","text":…}`` (1-2,000 characters, at most 5
messages per 10 s per user) and ``{"type":"heartbeat"}`` (every 15 s; answered with ``{"type":"heartbeat",
"watchedSeconds":n}``); the server broadcasts ``chat``, ``presence`` on join and leave, and ``ended`` when
the webinar ends. A frame that is not such a JSON object, a chat text out of bounds or over the rate limit
is answered ``{"type":"error","error":…}`` and nothing is broadcast or stored; the socket stays open.
Refusals: 4401 no valid token, 4403 not approved, 4404 unknown webinar, 4409 not LIVE.

Who is in a room is this process's memory (an edge process holds its sockets); watch time is live's
(join, heartbeat and leave go to its API), and the end comes from live's log (``RoomClosed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from academy.contracts.api import iso
from academy.contracts.events import RoomClosed
from junction.gateway.sessions import token_from
from junction.transport import UpstreamError

if TYPE_CHECKING:
    from junction.runtime import Runtime

log = structlog.get_logger()

NO_TOKEN, NOT_APPROVED, UNKNOWN_WEBINAR, NOT_LIVE = 4401, 4403, 4404, 4409
MAX_CHAT = 2000
RATE_LIMIT = 5  # chat messages per user ...
RATE_WINDOW = 10.0  # ... per this many seconds of platform time


@dataclass(eq=False)
class Viewer:
    """One open socket of a user in a room."""

    socket: WebSocket
    id: str
    full_name: str


@dataclass
class Room:
    """The sockets of one webinar's room in this process."""

    webinar_id: str
    viewers: list[Viewer] = field(default_factory=list)
    sent: dict[str, deque[float]] = field(default_factory=dict)  # user → times of their recent chat messages

    def presence(self) -> dict[str, Any]:
        """``{"type":"presence","viewers":[…]}``: each user once, in the order they came."""
        seen: dict[str, str] = {}
        for viewer in self.viewers:
            seen.setdefault(viewer.id, viewer.full_name)
        return {"type": "presence", "viewers": [{"id": k, "fullName": v} for k, v in seen.items()]}

    async def broadcast(self, message: dict[str, Any]) -> None:
        """Send to every socket of the room (a broken one is skipped: its reader will leave)."""
        text = json.dumps(message)
        await asyncio.gather(*(self._send(v, text) for v in list(self.viewers)))

    @staticmethod
    async def _send(viewer: Viewer, text: str) -> None:
        with contextlib.suppress(Exception):
            await viewer.socket.send_text(text)

    def allow(self, user_id: str, now: float) -> bool:
        """True when the user may chat now (at most RATE_LIMIT messages in RATE_WINDOW)."""
        recent = self.sent.setdefault(user_id, deque())
        while recent and recent[0] <= now - RATE_WINDOW:
            recent.popleft()
        if len(recent) >= RATE_LIMIT:
            return False
        recent.append(now)
        return True


class Rooms:
    """Every room this edge process serves."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.rooms: dict[str, Room] = {}
        self._following = False

    def _call(self, service: str) -> Any:
        return self.runtime.transport.client(service)

    async def endpoint(self, socket: WebSocket) -> None:
        """One viewer's connection, from the checks to the leave."""
        webinar_id = socket.path_params["webinar_id"]
        await socket.accept()
        code, user = await self._admit(socket, webinar_id)
        if user is None:
            await socket.close(code)
            return
        self._follow()
        room = self.rooms.setdefault(webinar_id, Room(webinar_id))
        viewer = Viewer(socket, user["id"], user["fullName"])
        room.viewers.append(viewer)
        await room.broadcast(room.presence())
        try:
            await self._serve(room, viewer)
        finally:
            if viewer in room.viewers:
                room.viewers.remove(viewer)
            with contextlib.suppress(Exception):
                await self._call("live").post(f"/rooms/{webinar_id}/leave", {"userId": viewer.id})
            if room.viewers:
                await room.broadcast(room.presence())
            elif self.rooms.get(webinar_id) is room:
                del self.rooms[webinar_id]

    async def _admit(self, socket: WebSocket, webinar_id: str) -> tuple[int, dict[str, Any] | None]:
        token = socket.query_params.get("token") or token_from(socket.headers, socket.cookies)
        if not token:
            return NO_TOKEN, None
        try:
            user: dict[str, Any] = await self._call("auth").post("/verify", {"token": token})
        except UpstreamError:
            return NO_TOKEN, None
        if user["status"] != "APPROVED":
            return NOT_APPROVED, None
        try:
            webinar = await self._call("content").get(f"/webinars/{webinar_id}")
        except UpstreamError as error:
            return (UNKNOWN_WEBINAR if error.status == 404 else NOT_LIVE), None
        if webinar["status"] != "LIVE":
            return NOT_LIVE, None
        try:
            await self._call("live").post(f"/rooms/{webinar_id}/join", {"userId": user["id"]})
        except UpstreamError:
            return NOT_LIVE, None  # LIVE, but its room is not open (yet, or any more)
        return 1000, user

    async def _serve(self, room: Room, viewer: Viewer) -> None:
        socket = viewer.socket
        while True:
            try:
                frame = await socket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if frame["type"] == "websocket.disconnect":
                return
            message = _decode(frame.get("text"))
            if message is None:
                await _error(socket, "malformed message: expected a JSON object with a type")
            elif message.get("type") == "chat":
                await self._chat(room, viewer, message.get("text"))
            elif message.get("type") == "heartbeat":
                try:
                    answer = await self._call("live").post(f"/rooms/{room.webinar_id}/heartbeat",
                                                           {"userId": viewer.id})
                except UpstreamError:
                    await _error(socket, "webinar is not live")
                    continue
                await socket.send_text(json.dumps({"type": "heartbeat", "watchedSeconds": answer["watchedSeconds"]}))
            else:
                await _error(socket, "unknown message type")

    async def _chat(self, room: Room, viewer: Viewer, text: Any) -> None:
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHAT:
            await _error(viewer.socket, f"a chat message has 1 to {MAX_CHAT} characters")
            return
        now = self.runtime.clock.timestamp()
        if not room.allow(viewer.id, now):
            await _error(viewer.socket, f"rate limit: at most {RATE_LIMIT} messages per {RATE_WINDOW:g} s")
            return
        await room.broadcast({"type": "chat", "from": {"id": viewer.id, "fullName": viewer.full_name},
                              "text": text, "at": iso(now)})

    def _follow(self) -> None:
        """Start following live's log for room ends (once, on the first viewer)."""
        if not self._following:
            self._following = True
            self.runtime.spawn("edge/rooms", self._ends())

    async def _ends(self) -> None:
        """Follow live's log for RoomClosed; a broken feed is opened again (rooms still open stay served)."""
        while True:
            try:
                follower = await self.runtime.follower("live")
            except Exception as error:  # the broker or the store is away: try again shortly
                log.warning("room ends not followed", error=repr(error))
                await asyncio.sleep(1.0)
                continue
            try:
                while True:
                    for envelope in await follower.next(1.0):
                        if envelope.type == RoomClosed.event_name:
                            await self.end(envelope.data["webinarId"])
            except Exception as error:
                log.warning("room ends feed broke", error=repr(error))
            finally:
                with contextlib.suppress(Exception):
                    await follower.close()
            await asyncio.sleep(1.0)

    async def end(self, webinar_id: str) -> None:
        """The webinar ended: tell its viewers and close their sockets."""
        room = self.rooms.pop(webinar_id, None)
        if room is None:
            return
        await room.broadcast({"type": "ended"})
        for viewer in list(room.viewers):
            with contextlib.suppress(Exception):
                await viewer.socket.close(1000)


def _decode(text: str | None) -> dict[str, Any] | None:
    if text is None or len(text) > 4 * MAX_CHAT + 100:
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    return message if isinstance(message, dict) and isinstance(message.get("type"), str) else None


async def _error(socket: WebSocket, message: str) -> None:
    await socket.send_text(json.dumps({"type": "error", "error": message}))
