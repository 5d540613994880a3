"""content (the thesis's Data Management): users and their proof documents, articles, comments, webinars,
subscriptions and points. Its internal API is called by bff, auth, scheduler and notify-runner; it never
faces clients (they come through bff, which checks who they are).

Every write that others must hear of appends its event in the same unit of work (the log is the outbox).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, String, Text, and_, delete, func, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from academy import agency
from academy.contracts.api import (
    ArticleIn,
    AuthoredComment,
    NewUser,
    Review,
    StatusChange,
    UserRef,
    WebinarIn,
    iso,
)
from academy.contracts.events import (
    ArticlePublished,
    CommentPosted,
    PointsGranted,
    RoomClosed,
    UserRegistered,
    UserReviewed,
    WebinarScheduled,
    WebinarStatusChanged,
)
from junction.errors import BadRequest, Conflict, HttpError, NotFound
from junction.http import read_body
from junction.ids import decode
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("content", worker=21)

users = service.table(
    "users",
    Column("id", String, primary_key=True),
    Column("email", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("full_name", String, nullable=False),
    Column("licence_number", String, nullable=False),
    Column("role", String, nullable=False),
    Column("status", String, nullable=False, index=True),
    Column("created_at", Float, nullable=False),
)
documents = service.table(  # private: only the admin route of bff reads them
    "documents",
    Column("user_id", String, primary_key=True),
    Column("media_type", String, nullable=False),
    Column("data", LargeBinary, nullable=False),
)
articles = service.table(
    "articles",
    Column("id", String, primary_key=True),
    Column("title", String, nullable=False),
    Column("body", Text, nullable=False),
    Column("category", String, nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("seq", BigInteger, nullable=False),  # a Snowflake: newest first, ties broken
)
comments = service.table(
    "comments",
    Column("id", String, primary_key=True),
    Column("article_id", String, nullable=False, index=True),
    Column("user_id", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seq", BigInteger, nullable=False),
)
webinars = service.table(
    "webinars",
    Column("id", String, primary_key=True),
    Column("title", String, nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String, nullable=False, index=True),
    Column("starts_at", Float, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("points", Integer, nullable=False),
    Column("status", String, nullable=False, index=True),
    Column("failure", Text),  # the last go-live failure (the saga's compensation records it)
)
webinar_subscriptions = service.table(
    "webinar_subscriptions",
    Column("webinar_id", String, primary_key=True),
    Column("user_id", String, primary_key=True),
)
category_subscriptions = service.table(
    "category_subscriptions",
    Column("category", String, primary_key=True),
    Column("user_id", String, primary_key=True),
)
points = service.table(
    "points",
    Column("webinar_id", String, primary_key=True),
    Column("user_id", String, primary_key=True),
    Column("points", Integer, nullable=False),
    Column("year", Integer, nullable=False),
)


# -- users -------------------------------------------------------------------------------------------
def profile(row: Any) -> dict[str, Any]:
    """A user as ``GET /api/me`` shows it."""
    return {"id": row["id"], "email": row["email"], "fullName": row["full_name"],
            "licenceNumber": row["licence_number"], "status": row["status"], "role": row["role"]}


@service.route("POST", "/users")
async def register(request: Request, uow: UnitOfWork) -> Response:
    """Store a registration and its document (bff validated both); 409 for a known e-mail."""
    raw = await read_body(request, limit=16 << 20)  # a 10 MB document in base64, and the fields
    if raw is None:
        raise BadRequest("registration too large")
    try:
        user = NewUser.model_validate_json(raw)
        document = base64.b64decode(user.document, validate=True) if user.document is not None else None
    except (ValueError, binascii.Error) as invalid:
        raise BadRequest("invalid registration") from invalid
    if await uow.fetch_one(select(users.c.id).where(users.c.email == user.email)) is not None:
        raise Conflict("e-mail already registered")
    user_id = uow.new_id()
    uow.execute(users.insert().values(
        id=user_id, email=user.email, password_hash=user.password_hash, full_name=user.full_name,
        licence_number=user.licence_number, role=user.role, status=user.status, created_at=uow.now().timestamp()))
    if document is not None and user.media_type is not None:
        uow.execute(documents.insert().values(user_id=user_id, media_type=user.media_type, data=document))
    uow.append(f"user-{user_id}", UserRegistered(user_id=user_id, email=user.email, full_name=user.full_name))
    return JSONResponse({"id": user_id, "status": user.status}, status_code=201)


@service.route("GET", "/credentials")
async def credentials(request: Request, uow: UnitOfWork) -> Any:
    """What auth needs to check a login (the thesis's shared credentials)."""
    email = request.query_params.get("email", "").strip().lower()
    row = await uow.fetch_one(select(users).where(users.c.email == email))
    if row is None:
        raise NotFound("user not found")
    return {"id": row["id"], "passwordHash": row["password_hash"], "role": row["role"], "status": row["status"],
            "fullName": row["full_name"]}


@service.route("GET", "/users/{user_id}")
async def get_user(user_id: str, uow: UnitOfWork) -> Any:
    """One user's profile."""
    row = await uow.fetch_one(select(users).where(users.c.id == user_id))
    if row is None:
        raise NotFound("user not found")
    return profile(row)


@service.route("GET", "/users")
async def list_users(request: Request, uow: UnitOfWork) -> Any:
    """Users, oldest first, of one status when ``?status=`` says so."""
    query = select(users).order_by(users.c.created_at, users.c.id)
    if status := request.query_params.get("status"):
        query = query.where(users.c.status == status)
    return [profile(row) for row in await uow.fetch_all(query)]


@service.route("POST", "/users/{user_id}/review")
async def review(user_id: str, body: Review, uow: UnitOfWork) -> Any:
    """Approve or reject a user's proof."""
    row = await uow.fetch_one(select(users.c.status).where(users.c.id == user_id))
    if row is None:
        raise NotFound("user not found")
    if row["status"] != body.status:
        uow.execute(update(users).where(users.c.id == user_id).values(status=body.status))
        uow.append(f"user-{user_id}", UserReviewed(user_id=user_id, status=body.status))
    return {"status": body.status}


@service.route("GET", "/users/{user_id}/document")
async def document(user_id: str, uow: UnitOfWork) -> Response:
    """The proof document as it was uploaded."""
    row = await uow.fetch_one(select(documents).where(documents.c.user_id == user_id))
    if row is None:
        raise NotFound("document not found")
    return Response(bytes(row["data"]), media_type=row["media_type"],
                    headers={"Content-Disposition": f'attachment; filename="proof-{user_id}"'})


@service.route("GET", "/users/{user_id}/points")
async def user_points(user_id: str, request: Request, uow: UnitOfWork) -> Any:
    """The user's points of a calendar year (this year by default)."""
    year = int(request.query_params.get("year") or uow.now().year)
    total = await uow.fetch_one(select(func.coalesce(func.sum(points.c.points), 0).label("total"))
                                .where(and_(points.c.user_id == user_id, points.c.year == year)))
    return {"year": year, "total": int(total["total"]) if total else 0}


# -- articles and comments ---------------------------------------------------------------------------
def article_json(row: Any) -> dict[str, Any]:
    """The spec's article shape."""
    return {"id": row["id"], "title": row["title"], "body": row["body"], "category": row["category"],
            "createdAt": iso(row["created_at"])}


@service.route("POST", "/articles")
async def publish(body: ArticleIn, uow: UnitOfWork) -> Response:
    """Publish an article; its category's subscribers hear of it (ArticlePublished)."""
    article_id = uow.new_id()
    now = uow.now().timestamp()
    uow.execute(articles.insert().values(id=article_id, title=body.title, body=body.body, category=body.category,
                                         created_at=now, seq=decode(article_id)))
    uow.append(f"article-{article_id}", ArticlePublished(article_id=article_id, title=body.title,
                                                         category=body.category))
    return JSONResponse({"id": article_id, "title": body.title, "body": body.body, "category": body.category,
                         "createdAt": iso(now)}, status_code=201)


@service.route("GET", "/articles")
async def list_articles(request: Request, uow: UnitOfWork) -> Any:
    """Articles, newest first (one category with ``?category=``)."""
    query = select(articles).order_by(articles.c.seq.desc())
    if category := request.query_params.get("category"):
        query = query.where(articles.c.category == category)
    return [article_json(row) for row in await uow.fetch_all(query)]


@service.route("GET", "/articles/{article_id}")
async def get_article(article_id: str, uow: UnitOfWork) -> Any:
    """One article."""
    row = await uow.fetch_one(select(articles).where(articles.c.id == article_id))
    if row is None:
        raise NotFound("article not found")
    return article_json(row)


@service.route("POST", "/articles/{article_id}/comments")
async def comment(article_id: str, body: AuthoredComment, uow: UnitOfWork) -> Response:
    """Comment on an article."""
    if await uow.fetch_one(select(articles.c.id).where(articles.c.id == article_id)) is None:
        raise NotFound("article not found")
    author = await uow.fetch_one(select(users).where(users.c.id == body.user_id))
    if author is None:
        raise NotFound("user not found")
    comment_id = uow.new_id()
    now = uow.now().timestamp()
    uow.execute(comments.insert().values(id=comment_id, article_id=article_id, user_id=body.user_id,
                                         text=body.text, created_at=now, seq=decode(comment_id)))
    uow.append(f"article-{article_id}", CommentPosted(comment_id=comment_id, article_id=article_id,
                                                      user_id=body.user_id))
    return JSONResponse({"id": comment_id, "articleId": article_id,
                         "author": {"id": author["id"], "fullName": author["full_name"]},
                         "text": body.text, "createdAt": iso(now)}, status_code=201)


@service.route("GET", "/articles/{article_id}/comments")
async def list_comments(article_id: str, uow: UnitOfWork) -> Any:
    """An article's comments, oldest first."""
    if await uow.fetch_one(select(articles.c.id).where(articles.c.id == article_id)) is None:
        raise NotFound("article not found")
    rows = await uow.fetch_all(
        select(comments, users.c.full_name).join(users, users.c.id == comments.c.user_id)
        .where(comments.c.article_id == article_id).order_by(comments.c.seq))
    return [{"id": r["id"], "articleId": article_id, "author": {"id": r["user_id"], "fullName": r["full_name"]},
             "text": r["text"], "createdAt": iso(r["created_at"])} for r in rows]


# -- webinars and subscriptions ----------------------------------------------------------------------
def webinar_json(row: Any) -> dict[str, Any]:
    """The spec's webinar shape."""
    return {"id": row["id"], "title": row["title"], "description": row["description"], "category": row["category"],
            "startsAt": iso(row["starts_at"]), "durationMinutes": row["duration_minutes"], "points": row["points"],
            "status": row["status"]}


async def _webinar(uow: UnitOfWork, webinar_id: str) -> Any:
    row = await uow.fetch_one(select(webinars).where(webinars.c.id == webinar_id))
    if row is None:
        raise NotFound("webinar not found")
    return row


@service.route("POST", "/webinars")
async def schedule(body: WebinarIn, uow: UnitOfWork) -> Response:
    """Schedule a webinar; scheduler arms its reminder, go-live and end (WebinarScheduled)."""
    starts_at = body.starts_at.astimezone(UTC)
    if starts_at <= uow.now():
        raise HttpError("startsAt must be in the future", status=422)
    webinar_id = uow.new_id()
    uow.execute(webinars.insert().values(
        id=webinar_id, title=body.title, description=body.description, category=body.category,
        starts_at=starts_at.timestamp(), duration_minutes=body.duration_minutes, points=body.points,
        status="SCHEDULED"))
    uow.append(f"webinar-{webinar_id}", WebinarScheduled(
        webinar_id=webinar_id, title=body.title, category=body.category, starts_at=starts_at.isoformat(),
        duration_minutes=body.duration_minutes, points=body.points))
    return JSONResponse(webinar_json({"id": webinar_id, "title": body.title, "description": body.description,
                                      "category": body.category, "starts_at": starts_at.timestamp(),
                                      "duration_minutes": body.duration_minutes, "points": body.points,
                                      "status": "SCHEDULED"}), status_code=201)


@service.route("GET", "/webinars")
async def list_webinars(request: Request, uow: UnitOfWork) -> Any:
    """Webinars by start time (one status with ``?status=``)."""
    query = select(webinars).order_by(webinars.c.starts_at, webinars.c.id)
    if status := request.query_params.get("status"):
        query = query.where(webinars.c.status == status)
    return [webinar_json(row) for row in await uow.fetch_all(query)]


@service.route("GET", "/webinars/{webinar_id}")
async def get_webinar(webinar_id: str, uow: UnitOfWork) -> Any:
    """One webinar (with the last go-live failure, for admins and the saga's tests)."""
    row = await _webinar(uow, webinar_id)
    return {**webinar_json(row), "failure": row["failure"]}


@service.route("POST", "/webinars/{webinar_id}/status")
async def change_status(webinar_id: str, body: StatusChange, uow: UnitOfWork) -> Any:
    """A saga step: move from ``expected`` to ``status`` (idempotent: already there is fine; 409 otherwise)."""
    row = await _webinar(uow, webinar_id)
    if row["status"] == body.status:
        return webinar_json(row)
    if row["status"] != body.expected:
        raise Conflict(f"webinar is {row['status']}, not {body.expected}")
    uow.require(update(webinars).where(and_(webinars.c.id == webinar_id, webinars.c.status == body.expected))
                .values(status=body.status, failure=body.reason if body.reason else row["failure"]))
    uow.append(f"webinar-{webinar_id}", WebinarStatusChanged(webinar_id=webinar_id, status=body.status,
                                                             reason=body.reason))
    return {**webinar_json(row), "status": body.status}


@service.route("POST", "/webinars/{webinar_id}/subscriptions")
async def subscribe(webinar_id: str, body: UserRef, uow: UnitOfWork) -> Response:
    """Subscribe a user to a webinar's reminder (twice is once)."""
    await _webinar(uow, webinar_id)
    uow.upsert(webinar_subscriptions, {"webinar_id": webinar_id, "user_id": body.user_id},
               keys=["webinar_id", "user_id"])
    return Response(status_code=204)


@service.route("DELETE", "/webinars/{webinar_id}/subscriptions/{user_id}")
async def unsubscribe(webinar_id: str, user_id: str, uow: UnitOfWork) -> Response:
    """Drop a webinar subscription."""
    await _webinar(uow, webinar_id)
    uow.execute(delete(webinar_subscriptions).where(and_(webinar_subscriptions.c.webinar_id == webinar_id,
                                                         webinar_subscriptions.c.user_id == user_id)))
    return Response(status_code=204)


@service.route("POST", "/categories/{category}/subscriptions")
async def subscribe_category(category: str, body: UserRef, uow: UnitOfWork) -> Response:
    """Subscribe a user to a category's webinars and articles."""
    uow.upsert(category_subscriptions, {"category": category, "user_id": body.user_id},
               keys=["category", "user_id"])
    return Response(status_code=204)


@service.route("DELETE", "/categories/{category}/subscriptions/{user_id}")
async def unsubscribe_category(category: str, user_id: str, uow: UnitOfWork) -> Response:
    """Drop a category subscription."""
    uow.execute(delete(category_subscriptions).where(and_(category_subscriptions.c.category == category,
                                                          category_subscriptions.c.user_id == user_id)))
    return Response(status_code=204)


@service.route("GET", "/users/{user_id}/subscriptions")
async def user_subscriptions(user_id: str, uow: UnitOfWork) -> Any:
    """What a user is subscribed to (the pages show it)."""
    w = await uow.fetch_all(select(webinar_subscriptions.c.webinar_id)
                            .where(webinar_subscriptions.c.user_id == user_id))
    c = await uow.fetch_all(select(category_subscriptions.c.category)
                            .where(category_subscriptions.c.user_id == user_id))
    return {"webinars": sorted(r["webinar_id"] for r in w), "categories": sorted(r["category"] for r in c)}


async def _recipients(uow: UnitOfWork, category: str, webinar_id: str | None) -> list[dict[str, str]]:
    by_category = select(category_subscriptions.c.user_id.label("user_id")).where(
        category_subscriptions.c.category == category)
    chosen = by_category
    if webinar_id is not None:
        chosen = by_category.union(select(webinar_subscriptions.c.user_id.label("user_id"))
                                   .where(webinar_subscriptions.c.webinar_id == webinar_id))  # type: ignore[assignment]
    ids = chosen.subquery()
    rows = await uow.fetch_all(select(users.c.id, users.c.email, users.c.full_name)
                               .where(and_(users.c.id.in_(select(ids.c.user_id)), users.c.status == "APPROVED"))
                               .order_by(users.c.id))
    return [{"id": r["id"], "email": r["email"], "fullName": r["full_name"]} for r in rows]


@service.route("GET", "/webinars/{webinar_id}/recipients")
async def webinar_recipients(webinar_id: str, uow: UnitOfWork) -> Any:
    """Approved users subscribed to the webinar or to its category, each once."""
    row = await _webinar(uow, webinar_id)
    return await _recipients(uow, row["category"], webinar_id)


@service.route("GET", "/categories/{category}/recipients")
async def category_recipients(category: str, uow: UnitOfWork) -> Any:
    """Approved users subscribed to a category."""
    return await _recipients(uow, category, None)


# -- points ------------------------------------------------------------------------------------------
@service.on("live", RoomClosed)
async def grant_points(event: RoomClosed, uow: UnitOfWork) -> None:
    """After a webinar ends: ask the agency for its points (with the number of viewers), then grant them to
    every viewer who watched at least 80 % of it. The inbox row commits with the grants: granted once."""
    row = await uow.fetch_one(select(webinars).where(webinars.c.id == event.webinar_id))
    if row is None:
        return
    awarded = await agency.request_points(event.webinar_id, row["points"], viewers=len(event.viewers))
    needed = row["duration_minutes"] * 60 * agency.THRESHOLD
    earners = sorted(user for user, seconds in event.viewers.items() if seconds >= needed)
    year = datetime.fromtimestamp(row["starts_at"], UTC).year
    for user in earners:
        uow.upsert(points, {"webinar_id": event.webinar_id, "user_id": user, "points": awarded, "year": year},
                   keys=["webinar_id", "user_id"])
    uow.append(f"webinar-{event.webinar_id}", PointsGranted(
        webinar_id=event.webinar_id, points=awarded, viewers=len(event.viewers), granted_to=earners))
