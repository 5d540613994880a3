"""bff (backend-for-frontend): the JSON API of spec section 0. It checks who calls (auth's ``/verify``) and
what they may do before anything else, validates bodies, calls the internal services and composes the
personal page. Internal services never see a client's token.

Access: anonymous callers get 401, users who are not approved 403 ``account not approved`` on everything
but ``/api/me``, and routes of a role (``/api/admin/**``: ADMIN; ``/api/analytics/**``: ANALYST) 403 for
the others, all before the body is read: a refused request stores nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from academy.contracts.api import ArticleIn, CommentIn, Registration, WebinarIn
from academy.documents import FormError, media_type, parse_form, too_large
from academy.passwords import hash_password
from junction.errors import BadRequest, Forbidden, HttpError, Unauthorized
from junction.gateway.sessions import token_from
from junction.http import read_body
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("bff", worker=22)
M = TypeVar("M", bound=BaseModel)

NOT_APPROVED = "account not approved"
REGISTRATION_LIMIT = 11 << 20  # a 10 MB document and the form around it


class Invalid(HttpError):
    """422 with the fields that failed."""

    status = 422


class TooLarge(HttpError):
    """413."""

    status = 413


async def principal(request: Request, uow: UnitOfWork) -> dict[str, Any]:
    """The calling user as content knows them now; 401 without a valid token."""
    token = token_from(request.headers, request.cookies)
    if token is None:
        raise Unauthorized("not authenticated")
    try:
        user: dict[str, Any] = await uow.call("auth").post("/verify", {"token": token})
    except UpstreamError as error:
        if error.status == 401:
            raise Unauthorized("not authenticated") from None
        raise
    return user


async def approved(request: Request, uow: UnitOfWork) -> dict[str, Any]:
    """The caller, who must be APPROVED (403 ``account not approved``)."""
    user = await principal(request, uow)
    if user["status"] != "APPROVED":
        raise Forbidden(NOT_APPROVED)
    return user


async def with_role(request: Request, uow: UnitOfWork, role: str) -> dict[str, Any]:
    """The caller, who must have ``role`` (403 otherwise) and be approved."""
    user = await principal(request, uow)
    if user["role"] != role:
        raise Forbidden(f"{role.lower()} only")
    if user["status"] != "APPROVED":
        raise Forbidden(NOT_APPROVED)
    return user


async def body_of(request: Request, model: type[M]) -> M:
    """The request's JSON body validated by ``model`` (400 undecodable, 413 too large, 422 invalid)."""
    raw = await read_body(request)
    if raw is None:
        raise TooLarge("request body too large")
    try:
        decoded = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest("invalid request body") from None
    try:
        return model.model_validate(decoded)
    except ValidationError as invalid:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in invalid.errors())
        raise Invalid(f"validation failed: {fields}") from None


def created(data: Any) -> Response:
    """201 with JSON."""
    return JSONResponse(data, status_code=201)


# -- registration ------------------------------------------------------------------------------------
@service.route("POST", "/api/auth/register")
async def register(request: Request, uow: UnitOfWork) -> Response:
    """Validate the form and its document (by content: 422; over 10 MB: 413), then content stores both."""
    raw = await read_body(request, limit=REGISTRATION_LIMIT)
    if raw is None:
        raise TooLarge("document too large (at most 10 MB)")
    try:
        form = parse_form(request.headers.get("content-type", ""), raw)
    except FormError as error:
        raise BadRequest(str(error)) from None
    document = form.files.get("document")
    if document is None:
        raise Invalid("validation failed: document")
    if too_large(document):
        raise TooLarge("document too large (at most 10 MB)")
    kind = media_type(document)  # by content: the file name and the declared type are not looked at
    if kind is None:
        raise Invalid("document must be a PDF, PNG or JPEG")
    try:
        fields = Registration.model_validate({k: form.fields.get(k) for k in
                                              ("email", "password", "fullName", "licenceNumber")})
    except ValidationError as invalid:
        names = ", ".join(".".join(str(p) for p in e["loc"]) for e in invalid.errors())
        raise Invalid(f"validation failed: {names}") from None
    answer = await uow.call("content").post("/users", {
        "email": fields.email, "passwordHash": await asyncio.to_thread(hash_password, fields.password),
        "fullName": fields.full_name,
        "licenceNumber": fields.licence_number, "mediaType": kind, "document": base64.b64encode(document).decode()})
    return created(answer)


# -- admin -------------------------------------------------------------------------------------------
@service.route("GET", "/api/admin/users")
async def admin_users(request: Request, uow: UnitOfWork) -> Any:
    """Users (of one status with ``?status=``)."""
    await with_role(request, uow, "ADMIN")
    status = request.query_params.get("status")
    return await uow.call("content").get("/users" + (f"?status={quote(status)}" if status else ""))


async def _review(request: Request, uow: UnitOfWork, user_id: str, status: str) -> Any:
    await with_role(request, uow, "ADMIN")
    return await uow.call("content").post(f"/users/{quote(user_id)}/review", {"status": status})


@service.route("POST", "/api/admin/users/{user_id}/approve")
async def approve(user_id: str, request: Request, uow: UnitOfWork) -> Any:
    """Approve a user's proof: ``{status: APPROVED}``."""
    return await _review(request, uow, user_id, "APPROVED")


@service.route("POST", "/api/admin/users/{user_id}/reject")
async def reject(user_id: str, request: Request, uow: UnitOfWork) -> Any:
    """Reject a user's proof: ``{status: REJECTED}``."""
    return await _review(request, uow, user_id, "REJECTED")


@service.route("GET", "/api/admin/users/{user_id}/document")
async def admin_document(user_id: str, request: Request, uow: UnitOfWork) -> Response:
    """The proof as uploaded (admins only)."""
    await with_role(request, uow, "ADMIN")
    answer = await uow.call("content").forward("GET", f"/users/{quote(user_id)}/document", b"", None)
    if answer.status != 200:
        raise HttpError(json.loads(answer.body).get("error", "document not found"), status=answer.status)
    return Response(answer.body, media_type=answer.content_type or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="proof-{user_id}"'})


@service.route("POST", "/api/admin/articles")
async def publish(request: Request, uow: UnitOfWork) -> Response:
    """Publish an article (its category's subscribers are notified)."""
    await with_role(request, uow, "ADMIN")
    body = await body_of(request, ArticleIn)
    return created(await uow.call("content").post("/articles", body.model_dump(by_alias=True)))


@service.route("POST", "/api/admin/webinars")
async def schedule(request: Request, uow: UnitOfWork) -> Response:
    """Schedule a webinar: ``{..., status: SCHEDULED}``."""
    await with_role(request, uow, "ADMIN")
    body = await body_of(request, WebinarIn)
    return created(await uow.call("content").post("/webinars", body.model_dump(mode="json", by_alias=True)))


# -- articles ----------------------------------------------------------------------------------------
@service.route("GET", "/api/articles")
async def articles(request: Request, uow: UnitOfWork) -> Any:
    """Articles, newest first (``?category=``)."""
    await approved(request, uow)
    category = request.query_params.get("category")
    return await uow.call("content").get("/articles" + (f"?category={quote(category)}" if category else ""))


@service.route("GET", "/api/articles/{article_id}")
async def article(article_id: str, request: Request, uow: UnitOfWork) -> Any:
    """One article."""
    await approved(request, uow)
    return await uow.call("content").get(f"/articles/{quote(article_id)}")


@service.route("POST", "/api/articles/{article_id}/comments")
async def comment(article_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Comment on an article."""
    user = await approved(request, uow)
    body = await body_of(request, CommentIn)
    return created(await uow.call("content").post(f"/articles/{quote(article_id)}/comments",
                                                  {"userId": user["id"], "text": body.text}))


@service.route("GET", "/api/articles/{article_id}/comments")
async def comments(article_id: str, request: Request, uow: UnitOfWork) -> Any:
    """An article's comments, oldest first."""
    await approved(request, uow)
    return await uow.call("content").get(f"/articles/{quote(article_id)}/comments")


# -- webinars and subscriptions ----------------------------------------------------------------------
@service.route("GET", "/api/webinars")
async def webinars(request: Request, uow: UnitOfWork) -> Any:
    """Webinars by start (``?status=SCHEDULED|LIVE|ENDED``)."""
    await approved(request, uow)
    status = request.query_params.get("status")
    if status is not None and status not in ("SCHEDULED", "LIVE", "ENDED"):
        raise BadRequest("status must be SCHEDULED, LIVE or ENDED")
    return await uow.call("content").get("/webinars" + (f"?status={status}" if status else ""))


@service.route("GET", "/api/webinars/{webinar_id}")
async def webinar(webinar_id: str, request: Request, uow: UnitOfWork) -> Any:
    """One webinar."""
    await approved(request, uow)
    found: dict[str, Any] = await uow.call("content").get(f"/webinars/{quote(webinar_id)}")
    found.pop("failure", None)
    return found


@service.route("POST", "/api/webinars/{webinar_id}/subscribe")
async def subscribe(webinar_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Be reminded of a webinar (404 for an unknown one)."""
    user = await approved(request, uow)
    await uow.call("content").post(f"/webinars/{quote(webinar_id)}/subscriptions", {"userId": user["id"]})
    return Response(status_code=204)


@service.route("DELETE", "/api/webinars/{webinar_id}/subscribe")
async def unsubscribe(webinar_id: str, request: Request, uow: UnitOfWork) -> Response:
    """No more reminder for a webinar."""
    user = await approved(request, uow)
    await uow.call("content").delete(f"/webinars/{quote(webinar_id)}/subscriptions/{quote(user['id'])}")
    return Response(status_code=204)


def _category(category: str) -> str:
    if not category or len(category) > 64 or not all(c.isalnum() or c in "-_" for c in category):
        raise BadRequest("invalid category")
    return category


@service.route("POST", "/api/categories/{category}/subscribe")
async def subscribe_category(category: str, request: Request, uow: UnitOfWork) -> Response:
    """Hear of a category's webinars and articles."""
    user = await approved(request, uow)
    await uow.call("content").post(f"/categories/{_category(category)}/subscriptions", {"userId": user["id"]})
    return Response(status_code=204)


@service.route("DELETE", "/api/categories/{category}/subscribe")
async def unsubscribe_category(category: str, request: Request, uow: UnitOfWork) -> Response:
    """No more news of a category."""
    user = await approved(request, uow)
    await uow.call("content").delete(f"/categories/{_category(category)}/subscriptions/{quote(user['id'])}")
    return Response(status_code=204)


# -- the personal page -------------------------------------------------------------------------------
async def personal_page(uow: UnitOfWork, user: dict[str, Any]) -> dict[str, Any]:
    """Profile, statistics, this year's points and unseen notifications (API composition)."""
    user_id = quote(user["id"])
    statistics = await uow.call("statistics").get(f"/users/{user_id}")
    points = await uow.call("content").get(f"/users/{user_id}/points")
    unseen = await uow.call("notify-center").get(f"/users/{user_id}/notifications?unseen=true")
    return {"profile": user, "statistics": statistics, "points": points, "unseenNotifications": unseen}


@service.route("GET", "/api/me")
async def me(request: Request, uow: UnitOfWork) -> Any:
    """The personal page (a user who is not approved yet sees their status here)."""
    return await personal_page(uow, await principal(request, uow))


@service.route("GET", "/api/me/subscriptions")
async def subscriptions(request: Request, uow: UnitOfWork) -> Any:
    """``{webinars: [id], categories: [name]}`` the caller is subscribed to (an addition: the pages use it)."""
    user = await approved(request, uow)
    return await uow.call("content").get(f"/users/{quote(user['id'])}/subscriptions")


@service.route("GET", "/api/me/notifications")
async def notifications(request: Request, uow: UnitOfWork) -> Any:
    """Every on-site notification of the caller, newest first."""
    user = await principal(request, uow)
    return await uow.call("notify-center").get(f"/users/{quote(user['id'])}/notifications")


@service.route("POST", "/api/me/notifications/{notification_id}/seen")
async def seen(notification_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Mark one of the caller's notifications seen (404 for another's)."""
    user = await principal(request, uow)
    await uow.call("notify-center").post(f"/users/{quote(user['id'])}/notifications/{quote(notification_id)}/seen")
    return Response(status_code=204)


@service.route("GET", "/api/analytics/activity")
async def activity(request: Request, uow: UnitOfWork) -> Any:
    """Activity per day from the statistics database (analysts only)."""
    await with_role(request, uow, "ANALYST")
    return await uow.call("statistics").get("/activity")
