"""recommendation: the social graph as a read model, and the reference's two graph queries.

The graph (users and undirected friendships) is a projection built only from the user and friend
services' events, so ``junction replay social --projection recommendations`` rebuilds it from the logs.
A friendship is kept as two directed links (a→b and b→a) under the primary key (a, b): "the friends of
x" is one index range, and both queries are two index joins, whatever the size of the graph. Its
handlers only write, so the projection takes its events in batches (``Service.projection(batch=...)``):
replays and catch-ups commit hundreds of events per transaction.

The queries follow the reference's Cypher (spec section 3) exactly, with ties ordered by user id:

* mutual friends of a and b: ``(a)-[:FRIEND]-(fof)-[:FRIEND]-(b)``, distinct, in any direction;
* recommendations for me: users two steps away who are not me and not my friends, weighted by the
  number of my friends they are friends with (their mutual friends with me), heaviest first.

A user whose UserCreated has not reached the projection yet is left out of answers until it has.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy import BigInteger, Column, Float, PrimaryKeyConstraint, String, Text, and_, desc, func, or_, select
from sqlalchemy.sql import exists
from starlette.requests import Request
from starlette.responses import Response

from junction.errors import BadRequest
from junction.http_errors import spring_errors
from junction.service import Service
from junction.uow import UnitOfWork
from social.contracts.api import UP, long_id, user_json
from social.contracts.events import FriendAdded, FriendRemoved, UserCreated, UserUpdated

service = Service("recommendation", worker=3, errors=spring_errors)

people = service.table(
    "people",
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("first_name", String, nullable=False),
    Column("last_name", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_modified", Float, nullable=False),
    # The user as the API answers it, rendered when the event is taken: a recommendation list of hundreds
    # of users is then joined text, not hundreds of rows turned into dicts and back into JSON.
    Column("json", Text, nullable=False),
)
links = service.table(
    "links",
    Column("a", BigInteger, nullable=False),
    Column("b", BigInteger, nullable=False),
    PrimaryKeyConstraint("a", "b"),  # a's friends are one range of the key
)

PROJECTION = "recommendations"
graph = service.projection(PROJECTION, tables=[people, links], batch=500)
GRAPH_PAGE_LIMIT = 2000  # users drawn by the graph page at most


@graph.on("user", UserCreated, UserUpdated)
async def on_user(event: UserCreated | UserUpdated, uow: UnitOfWork) -> None:
    """A user node, created or renamed."""
    values = {"first_name": event.first_name, "last_name": event.last_name,
              "created_at": event.created_at.timestamp(), "last_modified": event.last_modified.timestamp()}
    values["json"] = json.dumps(user_json({"id": event.user_id, **values}), separators=(",", ":"))
    uow.upsert(people, {"id": event.user_id, **values}, keys=["id"], update=values)


@graph.on("friend", FriendAdded)
async def on_added(event: FriendAdded, uow: UnitOfWork) -> None:
    """A friendship: a link each way."""
    for a, b in ((event.user_id, event.friend_id), (event.friend_id, event.user_id)):
        uow.upsert(links, {"a": a, "b": b}, keys=["a", "b"])


@graph.on("friend", FriendRemoved)
async def on_removed(event: FriendRemoved, uow: UnitOfWork) -> None:
    """A friendship ended: both links go."""
    me, other = event.user_id, event.friend_id
    uow.execute(links.delete().where(or_(and_(links.c.a == me, links.c.b == other),
                                         and_(links.c.a == other, links.c.b == me))))


async def mutual_friends(uow: UnitOfWork, a: int, b: int) -> list[str]:
    """Users who are friends of both ``a`` and ``b``, by id (as JSON texts)."""
    if a == b:  # Cypher walks no relationship twice in one pattern: with one link per pair, nobody
        return []
    x, y = links.alias("x"), links.alias("y")
    rows = await uow.fetch_all(
        select(people.c.json)
        .select_from(x.join(y, and_(y.c.a == x.c.b, y.c.b == b)).join(people, people.c.id == x.c.b))
        .where(x.c.a == a).order_by(people.c.id))
    return [row["json"] for row in rows]


async def recommendations(uow: UnitOfWork, me: int) -> list[tuple[str, int]]:
    """Friends of my friends who are neither me nor my friends, with their number of mutual friends with me,
    heaviest first, ties by id (as JSON texts and weights)."""
    mine, theirs, known = links.alias("mine"), links.alias("theirs"), links.alias("known")
    weighted = (select(theirs.c.b.label("id"), func.count().label("weight"))
                .select_from(mine.join(theirs, theirs.c.a == mine.c.b))
                .where(mine.c.a == me, theirs.c.b != me, ~exists().where(known.c.a == me, known.c.b == theirs.c.b))
                .group_by(theirs.c.b).subquery())
    rows = await uow.fetch_all(
        select(people.c.json, weighted.c.weight).join(weighted, weighted.c.id == people.c.id)
        .order_by(desc(weighted.c.weight), weighted.c.id))
    return [(row["json"], row["weight"]) for row in rows]


def json_list(items: list[str]) -> Response:
    """A JSON array of ready JSON texts."""
    return Response("[" + ",".join(items) + "]", media_type="application/json")


@service.route("GET", "/v1/users/{user_id}/commands/findMutualFriends")
async def find_mutual_friends(user_id: str, request: Request, uow: UnitOfWork) -> Response:
    """The reference's ``findMutualFriends?friendId=``."""
    return json_list(await mutual_friends(uow, long_id(user_id, "userId"),
                                          long_id(request.query_params.get("friendId"), "friendId")))


@service.route("GET", "/v1/users/{user_id}/commands/recommendFriends")
async def recommend_friends(user_id: str, uow: UnitOfWork) -> Response:
    """The reference's ``recommendFriends``: ``[{"user": User, "weight": n}]``."""
    ranked = await recommendations(uow, long_id(user_id, "userId"))
    return json_list([f'{{"user":{user},"weight":{weight}}}' for user, weight in ranked])


@service.route("GET", "/v1/users/{user_id}/friends")
async def friends_of(user_id: str, uow: UnitOfWork) -> Response:
    """A user's friends in either direction (the graph page's panel), by id."""
    rows = await uow.fetch_all(select(people.c.json).join(links, links.c.b == people.c.id)
                               .where(links.c.a == long_id(user_id, "userId")).order_by(people.c.id))
    return json_list([row["json"] for row in rows])


@service.route("GET", "/v1/graph")
async def whole_graph(request: Request, uow: UnitOfWork) -> dict[str, Any]:
    """The graph page's picture: the first users by id (``limit``, at most 2,000) and the friendships among them."""
    limit = min(long_id(request.query_params.get("limit", str(GRAPH_PAGE_LIMIT)), "limit"), GRAPH_PAGE_LIMIT)
    if limit < 0:
        raise BadRequest("limit must not be negative")
    rows = await uow.fetch_all(select(people.c.id, people.c.json).order_by(people.c.id).limit(limit))
    last = rows[-1]["id"] if rows else 0
    pairs = await uow.fetch_all(select(links).where(links.c.a < links.c.b, links.c.b <= last))
    return {"users": [json.loads(row["json"]) for row in rows],
            "friendships": [[p["a"], p["b"]] for p in pairs]}


CAUGHT_UP_WAIT = 5.0  # seconds a caller may wait for the graph to take an event


@service.route("GET", "/v1/graph/caught-up")
async def caught_up(request: Request, uow: UnitOfWork) -> dict[str, bool]:
    """Whether the graph has taken event ``event`` of service ``source`` (``user`` or ``friend``), waiting up to
    5 s for it: the live page pushes a change once the answers it then asks for include it."""
    source, event = request.query_params.get("source"), request.query_params.get("event")
    names = [n for n, s in service.subscriptions.items() if s.projection == PROJECTION and s.source == source]
    if not names or not event:
        raise BadRequest("source (user or friend) and event are required")
    deadline = time.monotonic() + CAUGHT_UP_WAIT
    while not await uow.store.handled(names[0], [event]):
        if time.monotonic() > deadline:
            return {"caughtUp": False}
        await asyncio.sleep(0.02)  # a real consumer in real time, whatever the platform clock says
    return {"caughtUp": True}


@service.route("GET", "/actuator/health")
async def health() -> dict[str, str]:
    """Spring Boot Actuator's health answer."""
    return UP
