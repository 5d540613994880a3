"""live: the webinar rooms' state and watch time. A room opens when its webinar goes LIVE (the go-live saga)
and closes when it ends. Viewers join, beat every 15 s and leave through the edge's WebSocket
(``academy.rooms``); each beat credits the time since the viewer's previous one, at most ``GAP_LIMIT``
(a viewer whose page stopped beating stops earning), and only while the room is open. When the room
closes, each viewer's time is reported (``ViewerWatched`` for statistics, ``RoomClosed`` for the points).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Float, Integer, String, and_, func, select, update
from starlette.requests import Request

from academy.contracts.api import Beat
from academy.contracts.events import RoomClosed, RoomOpened, ViewerWatched
from junction.errors import Conflict, HttpError, NotFound
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("live", worker=24)

GAP_LIMIT = 30.0  # seconds credited at most between two beats (the page beats every 15 s)
MAX_OPEN_ROOMS = 1000  # rooms one live instance serves at once; more cannot be opened (503)

rooms = service.table(
    "rooms",
    Column("webinar_id", String, primary_key=True),
    Column("status", String, nullable=False),  # OPEN | CLOSED
    Column("opened_at", Float, nullable=False),
)
watch = service.table(
    "watch",
    Column("webinar_id", String, primary_key=True),
    Column("user_id", String, primary_key=True),
    Column("seconds", Float, nullable=False),
    Column("last_beat", Float),  # None while the viewer is not in the room
    Column("beats", Integer, nullable=False),
)


class NoCapacity(HttpError):
    """503: no room can be opened now."""

    status = 503


async def _room(uow: UnitOfWork, webinar_id: str) -> Any:
    row = await uow.fetch_one(select(rooms).where(rooms.c.webinar_id == webinar_id))
    if row is None:
        raise NotFound("room not found")
    return row


@service.route("POST", "/rooms/{webinar_id}/open")
async def open_room(webinar_id: str, uow: UnitOfWork) -> Any:
    """Prepare the room of a webinar that went LIVE (opening an open room is fine)."""
    row = await uow.fetch_one(select(rooms).where(rooms.c.webinar_id == webinar_id))
    if row is not None:
        if row["status"] == "CLOSED":
            raise Conflict("room already closed")
        return {"status": "OPEN"}
    open_now = await uow.fetch_one(select(func.count().label("n")).select_from(rooms).where(rooms.c.status == "OPEN"))
    if open_now is not None and open_now["n"] >= MAX_OPEN_ROOMS:
        raise NoCapacity("no room capacity left")
    uow.execute(rooms.insert().values(webinar_id=webinar_id, status="OPEN", opened_at=uow.now().timestamp()))
    uow.append(f"room-{webinar_id}", RoomOpened(webinar_id=webinar_id))
    return {"status": "OPEN"}


@service.route("GET", "/rooms/{webinar_id}")
async def get_room(webinar_id: str, uow: UnitOfWork) -> Any:
    """``{status: OPEN|CLOSED}``; 404 for a room never opened."""
    return {"status": (await _room(uow, webinar_id))["status"]}


def _credit(row: Any, now: float) -> float:
    """The viewer's seconds with the time since their last beat added (at most GAP_LIMIT)."""
    seconds: float = row["seconds"]
    if row["last_beat"] is not None:
        seconds += max(0.0, min(now - row["last_beat"], GAP_LIMIT))
    return seconds


async def _beat(uow: UnitOfWork, webinar_id: str, user_id: str, present: bool) -> dict[str, Any]:
    room = await _room(uow, webinar_id)
    if room["status"] != "OPEN":
        raise Conflict("webinar is not live")
    now = uow.now().timestamp()
    row = await uow.fetch_one(select(watch).where(and_(watch.c.webinar_id == webinar_id, watch.c.user_id == user_id)))
    seconds = _credit(row, now) if row is not None else 0.0
    beats = (row["beats"] if row is not None else 0) + 1
    uow.upsert(watch, {"webinar_id": webinar_id, "user_id": user_id, "seconds": seconds,
                       "last_beat": now if present else None, "beats": beats},
               keys=["webinar_id", "user_id"],
               update={"seconds": seconds, "last_beat": now if present else None, "beats": beats})
    return {"watchedSeconds": int(seconds)}


@service.route("POST", "/rooms/{webinar_id}/join")
async def join(webinar_id: str, body: Beat, uow: UnitOfWork) -> Any:
    """A viewer entered the room (409 unless it is open)."""
    return await _beat(uow, webinar_id, body.user_id, present=True)


@service.route("POST", "/rooms/{webinar_id}/heartbeat")
async def heartbeat(webinar_id: str, body: Beat, uow: UnitOfWork) -> Any:
    """A viewer is still there: ``{watchedSeconds}``."""
    return await _beat(uow, webinar_id, body.user_id, present=True)


@service.route("POST", "/rooms/{webinar_id}/leave")
async def leave(webinar_id: str, body: Beat, uow: UnitOfWork) -> Any:
    """A viewer left (its time up to now counts)."""
    room = await uow.fetch_one(select(rooms.c.status).where(rooms.c.webinar_id == webinar_id))
    if room is None or room["status"] != "OPEN":
        return {"watchedSeconds": None}  # closing already credited everyone
    return await _beat(uow, webinar_id, body.user_id, present=False)


@service.route("POST", "/rooms/{webinar_id}/close")
async def close_room(webinar_id: str, request: Request, uow: UnitOfWork) -> Any:
    """The webinar ended: credit everyone still there, close, report each viewer's time (once)."""
    room = await uow.fetch_one(select(rooms).where(rooms.c.webinar_id == webinar_id))
    if room is not None and room["status"] == "CLOSED":
        return {"status": "CLOSED"}
    now = uow.now().timestamp()
    viewers: dict[str, int] = {}
    for row in await uow.fetch_all(select(watch).where(watch.c.webinar_id == webinar_id).order_by(watch.c.user_id)):
        viewers[row["user_id"]] = round(_credit(row, now))
    uow.execute(update(watch).where(watch.c.webinar_id == webinar_id).values(last_beat=None))
    if room is None:
        uow.execute(rooms.insert().values(webinar_id=webinar_id, status="CLOSED", opened_at=now))
    else:
        uow.require(update(rooms).where(and_(rooms.c.webinar_id == webinar_id, rooms.c.status == "OPEN"))
                    .values(status="CLOSED"))
    for user_id, seconds in viewers.items():
        uow.append(f"room-{webinar_id}", ViewerWatched(webinar_id=webinar_id, user_id=user_id, seconds=seconds))
    uow.append(f"room-{webinar_id}", RoomClosed(webinar_id=webinar_id, viewers=viewers))
    return {"status": "CLOSED"}
