"""user: the page's CreateUser, with a 409 for a taken username or e-mail, and its event through the outbox.

A user and its ``UserCreated`` commit in one transaction; the event reaches notification and analytics
from the log (embedded) or from topic ``user-events`` (distributed, ``USER_CREATED_JSON``: key
``user-<id>``, value ``{"event":"user.created","user_id":<id>,"email":"<email>"}``), so a request
answered 201 while Kafka is down is published once Kafka is back.

Ids count up from 1 as the page's ``ID uint`` primary key does: they come from the store's sequence
(``UnitOfWork.next_value``), so the manifests' three replicas never hand out one twice, and the unique
columns find a taken name, so creating a user needs no lookup first: when the commit fails on a unique
row, the username or e-mail is taken (409), and the id taken for it is left unused, as a SQL sequence's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, String, or_, select
from starlette.responses import JSONResponse, Response

from junction.errors import BadRequest, ConcurrencyError, Conflict, NotFound
from junction.service import Service
from junction.uow import UnitOfWork
from pipeline import health
from pipeline.contracts.api import INVALID_USER, USER_EXISTS, NewUser
from pipeline.contracts.events import USER_CREATED_JSON, USER_EVENTS, UserCreated, user_stream

service = Service("user", worker=1)
health.declare(service)

users = service.table(
    "users",
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String, nullable=False, unique=True),
    Column("email", String, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),  # platform time, Unix seconds
)

service.export(USER_EVENTS, UserCreated, USER_CREATED_JSON)


def user_json(row: dict[str, object]) -> dict[str, object]:
    """The page's user JSON."""
    return {"id": row["id"], "username": row["username"], "email": row["email"]}


@service.route("POST", "/users", invalid=BadRequest(INVALID_USER))
async def create(body: NewUser, uow: UnitOfWork) -> Response:
    """201 with the user once it and its event are committed; 409 when the username or e-mail is taken.

    The unique columns decide: a taken name fails the commit, and only then is the table read, so a new
    user costs no lookup."""
    user_id = await uow.next_value("users")
    uow.insert(users, {"id": user_id, "username": body.username, "email": body.email,
                       "created_at": uow.now().timestamp()})
    uow.append(user_stream(user_id), UserCreated(user_id=user_id, email=body.email), expected_version=0)
    try:
        await uow.commit()
    except ConcurrencyError:
        taken = await uow.fetch_one(select(users.c.id).where(or_(users.c.username == body.username,
                                                                 users.c.email == body.email)))
        if taken is not None:
            raise Conflict(USER_EXISTS) from None
        raise  # not a name after all (a row of the same user committed meanwhile): the platform runs it again
    return JSONResponse({"id": user_id, "username": body.username, "email": body.email}, status_code=201)


@service.route("GET", "/users/{user_id}")
async def get(user_id: str, uow: UnitOfWork) -> dict[str, object]:
    """One user; 404 when unknown."""
    if not user_id.isdigit():
        raise NotFound("user not found")
    row = await uow.fetch_one(select(users).where(users.c.id == int(user_id)))
    if row is None:
        raise NotFound("user not found")
    return user_json(dict(row))
