"""user: the people of the network (the reference's user-service).

Ids are serial from 1 on a fresh system (a named sequence of the store, as the reference's BIGINT
autoincrement); each write commits with its event, so the recommendation graph hears of every user.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, select
from starlette.responses import JSONResponse

from junction.errors import BadRequest, NotFound
from junction.http_errors import spring_errors
from junction.service import Service
from junction.uow import UnitOfWork
from social.contracts.api import (
    ID_MISMATCH,
    INVALID_USER,
    NO_SUCH_USER,
    UP,
    NewUser,
    UserUpdate,
    long_id,
    user_json,
)
from social.contracts.events import UserCreated, UserUpdated

service = Service("user", worker=1, errors=spring_errors)

users = service.table(
    "users",
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_name", String, nullable=False),
    Column("last_name", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_modified", Float, nullable=False),
)


def stream(user_id: int) -> str:
    """The stream of one user's events."""
    return f"user-{user_id}"


@service.route("POST", "/v1/users", invalid=BadRequest(INVALID_USER))
async def create(body: NewUser, uow: UnitOfWork) -> JSONResponse:
    """Create a user: 201 with the user, its UserCreated committed with it."""
    user_id = await uow.next_value("users")
    now = uow.now()
    row = {"id": user_id, "first_name": body.first_name, "last_name": body.last_name,
           "created_at": now.timestamp(), "last_modified": now.timestamp()}
    uow.insert(users, row)
    uow.append(stream(user_id), UserCreated(user_id=user_id, first_name=body.first_name, last_name=body.last_name,
                                            created_at=now, last_modified=now), expected_version=0)
    return JSONResponse(user_json(row), status_code=201)


async def _user(uow: UnitOfWork, user_id: int) -> Any:
    row = await uow.fetch_one(select(users).where(users.c.id == user_id))
    if row is None:
        raise NotFound(NO_SUCH_USER)
    return row


@service.route("GET", "/v1/users/{user_id}")
async def get(user_id: str, uow: UnitOfWork) -> dict[str, Any]:
    """One user; 404 when there is none."""
    return user_json(await _user(uow, long_id(user_id, "id")))


@service.route("PUT", "/v1/users/{user_id}", invalid=BadRequest(INVALID_USER))
async def update(user_id: str, body: UserUpdate, uow: UnitOfWork) -> dict[str, Any]:
    """Rename a user: 200 with the user, its UserUpdated committed with it; 400 when the ids differ."""
    wanted = long_id(user_id, "id")
    if body.id != wanted:
        raise BadRequest(ID_MISMATCH)
    row = dict(await _user(uow, wanted))
    now = uow.now()
    row |= {"first_name": body.first_name, "last_name": body.last_name, "last_modified": now.timestamp()}
    uow.require(users.update().where(users.c.id == wanted)
                .values(first_name=body.first_name, last_name=body.last_name, last_modified=now.timestamp()))
    uow.append(stream(wanted), UserUpdated(user_id=wanted, first_name=body.first_name, last_name=body.last_name,
                                           created_at=row["created_at"], last_modified=now))
    return user_json(row)


@service.route("GET", "/actuator/health")
async def health() -> dict[str, str]:
    """Spring Boot Actuator's health answer."""
    return UP
