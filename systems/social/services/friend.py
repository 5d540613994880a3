"""friend: friendships (the reference's friend-service).

A friendship is undirected for uniqueness: a unique index on the ordered pair (smaller id, larger id)
makes "A befriends B" and "B befriends A" one row at most, atomically, whatever the interleaving (a racing
writer loses on the index, runs again, and then sees the row: 409). Both users must exist, which the user
service's contract answers (``GET /v1/users/{id}``). Every write commits with its event (the outbox).
"""

from __future__ import annotations

from typing import Any

import httpx
import structlog
from sqlalchemy import BigInteger, Column, Float, Index, and_, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from junction.errors import BadRequest, ConditionFailed, Conflict, HttpError, NotFound
from junction.http_errors import spring_errors
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork
from social.contracts.api import (
    FRIENDSHIP_EXISTS,
    NO_SUCH_FRIENDSHIP,
    NO_SUCH_USERS,
    SELF_FRIENDSHIP,
    UP,
    friend_json,
    long_id,
)
from social.contracts.events import FriendAdded, FriendRemoved

log = structlog.get_logger()

service = Service("friend", worker=2, errors=spring_errors)

friends = service.table(
    "friend",
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("friend_id", BigInteger, nullable=False),
    Column("low", BigInteger, nullable=False),  # min(user_id, friend_id): the pair, undirected
    Column("high", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("friend_pair", "low", "high", unique=True),
)


def _pair(a: int, b: int) -> Any:
    """The row of the friendship of a and b, in either direction."""
    return and_(friends.c.low == min(a, b), friends.c.high == max(a, b))


async def _both_exist(uow: UnitOfWork, *user_ids: int) -> bool:
    """Whether the user service knows every one of ``user_ids``."""
    users = uow.call("user")
    for user_id in user_ids:
        try:
            await users.get(f"/v1/users/{user_id}")
        except UpstreamError as error:
            if error.status == 404:
                return False
            raise HttpError("The user service failed", status=503) from None
        except httpx.HTTPError:
            log.warning("user service unreachable", user=user_id)
            raise HttpError("The user service is unavailable", status=503) from None
    return True


@service.route("POST", "/v1/users/{user_id}/commands/addFriend")
async def add(user_id: str, request: Request, uow: UnitOfWork) -> JSONResponse:
    """Befriend: 201 with the row; 400 oneself, 404 an unknown user, 409 an existing pair (either way)."""
    me = long_id(user_id, "userId")
    other = long_id(request.query_params.get("friendId"), "friendId")
    if me == other:
        raise BadRequest(SELF_FRIENDSHIP)
    if await uow.fetch_one(select(friends.c.id).where(_pair(me, other))) is not None:
        raise Conflict(FRIENDSHIP_EXISTS)
    if not await _both_exist(uow, me, other):
        raise NotFound(NO_SUCH_USERS)
    row_id = await uow.next_value("friends")
    now = uow.now()
    row = {"id": row_id, "user_id": me, "friend_id": other, "low": min(me, other), "high": max(me, other),
           "created_at": now.timestamp(), "updated_at": now.timestamp()}
    uow.insert(friends, row)
    uow.append(f"friendship-{row['low']}-{row['high']}",
               FriendAdded(id=row_id, user_id=me, friend_id=other, created_at=now))
    return JSONResponse(friend_json(row), status_code=201)


@service.route("POST", "/v1/users/{user_id}/commands/removeFriend")
async def remove(user_id: str, request: Request, uow: UnitOfWork) -> Response:
    """End a friendship (asked by either of the two): 204; 404 when there is none."""
    me = long_id(user_id, "userId")
    other = long_id(request.query_params.get("friendId"), "friendId")
    row = await uow.fetch_one(select(friends).where(_pair(me, other)))
    if row is None:
        raise NotFound(NO_SUCH_FRIENDSHIP)
    uow.require(friends.delete().where(friends.c.id == row["id"]))
    uow.append(f"friendship-{row['low']}-{row['high']}",
               FriendRemoved(id=row["id"], user_id=row["user_id"], friend_id=row["friend_id"]))
    try:
        await uow.commit()
    except ConditionFailed:  # a racing removal took it first: one FriendRemoved, and this one found nothing
        raise NotFound(NO_SUCH_FRIENDSHIP) from None
    return Response(status_code=204)


@service.route("GET", "/v1/users/{user_id}/friends")
async def of_user(user_id: str, uow: UnitOfWork) -> list[dict[str, Any]]:
    """The friendships the user created (outgoing), all of them, oldest first."""
    me = long_id(user_id, "userId")
    rows = await uow.fetch_all(select(friends).where(friends.c.user_id == me).order_by(friends.c.id))
    return [friend_json(row) for row in rows]


@service.route("GET", "/v1/friends/{friend_id}")
async def one(friend_id: str, uow: UnitOfWork) -> dict[str, Any]:
    """One friendship row; 404 when there is none."""
    row = await uow.fetch_one(select(friends).where(friends.c.id == long_id(friend_id, "id")))
    if row is None:
        raise NotFound(NO_SUCH_FRIENDSHIP)
    return friend_json(row)


@service.route("GET", "/actuator/health")
async def health() -> dict[str, str]:
    """Spring Boot Actuator's health answer."""
    return UP

