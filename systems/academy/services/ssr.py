"""ssr: the server-rendered pages (usable without JavaScript, except the live room's chat and presence).

Pages ask auth who the session cookie belongs to and take their data from bff's JSON API with the caller's
token, as any other client of it would; forms post here and are answered with a redirect (post/redirect/get).
The session cookie is httpOnly and SameSite=Lax, so other sites cannot post these forms with it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from junction.gateway.sessions import CookiePolicy, token_from
from junction.http import read_body
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("ssr", worker=28)
templates = Environment(loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "web" / "templates"),
                        autoescape=select_autoescape(["html"]))
cookie = CookiePolicy()
Page = Callable[..., Awaitable[Response]]


class Exit(Exception):  # a way out of a page, not an error
    """Leave a page early with this response (a redirect to the login, the waiting page)."""

    def __init__(self, response: Response) -> None:
        super().__init__("exit")
        self.response = response


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A template as an HTML answer."""
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


def redirect(to: str) -> RedirectResponse:
    """303 See Other: the browser GETs ``to``."""
    return RedirectResponse(to, status_code=303)


def page(method: str, path: str) -> Callable[[Page], Page]:
    """Declare a page route whose handler may leave through ``Exit``."""

    def register(handler: Page) -> Page:
        @functools.wraps(handler)
        async def run(*args: Any, **kwargs: Any) -> Response:
            try:
                return await handler(*args, **kwargs)
            except Exit as leave:
                return leave.response

        service.route(method, path)(run)
        return handler

    return register


async def who(request: Request, uow: UnitOfWork) -> dict[str, Any] | None:
    """The signed-in user (auth checks the cookie's token), or None."""
    token = token_from(request.headers, request.cookies)
    if token is None:
        return None
    try:
        user: dict[str, Any] = await uow.call("auth").post("/verify", {"token": token})
    except UpstreamError:
        return None
    return user


async def api(request: Request, uow: UnitOfWork, method: str, path: str, json: Any = None,
              user: dict[str, Any] | None = None) -> Any:
    """bff's answer as the caller; its JSON (None for 204). A refusal leaves the page: to the login page
    (401), the waiting page (not approved) or an error page."""
    token = token_from(request.headers, request.cookies)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer: httpx.Response = await uow.call("bff").http.request(method, path, json=json, headers=headers)
    if answer.status_code == 401:
        raise Exit(redirect("/login"))
    if answer.status_code == 403 and answer.json().get("error") == "account not approved":
        raise Exit(render("pending.html", 403, user=user))
    if answer.status_code >= 400:
        raise Exit(render("base.html", answer.status_code, user=user, error=answer.json().get("error", "failed")))
    return answer.json() if answer.content else None


async def signed_in(request: Request, uow: UnitOfWork) -> dict[str, Any]:
    """The signed-in user, or leave for the login page."""
    user = await who(request, uow)
    if user is None:
        raise Exit(redirect("/login"))
    return user


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the first value of each)."""
    raw = await read_body(request) or b""
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True).items()}


# -- everyone ----------------------------------------------------------------------------------------
@page("GET", "/")
async def landing(request: Request, uow: UnitOfWork) -> Response:
    """The landing page; approved users also see what is coming."""
    user = await who(request, uow)
    webinars = None
    if user is not None and user["status"] == "APPROVED":
        webinars = [w for w in await api(request, uow, "GET", "/api/webinars", user=user) if w["status"] != "ENDED"]
    return render("landing.html", user=user, webinars=webinars)


@page("GET", "/register")
async def register_form(request: Request, uow: UnitOfWork) -> Response:
    """The registration form."""
    return render("register.html", user=await who(request, uow))


@page("POST", "/register")
async def register(request: Request, uow: UnitOfWork) -> Response:
    """Hand the form (document included) to bff as it came."""
    raw = await read_body(request, limit=12 << 20)
    if raw is None:
        return render("register.html", 413, user=None, error="document too large (at most 10 MB)")
    answer = await uow.call("bff").http.post("/api/auth/register", content=raw,
                                             headers={"content-type": request.headers.get("content-type", "")})
    if answer.status_code != 201:
        return render("register.html", answer.status_code, user=None, error=answer.json().get("error"))
    return render("login.html", user=None,
                  notice="Registered. You can log in; articles and webinars open once an admin approves your proof.")


@page("GET", "/login")
async def login_form(request: Request, uow: UnitOfWork) -> Response:
    """The login form."""
    return render("login.html", user=await who(request, uow))


@page("POST", "/login")
async def login(request: Request, uow: UnitOfWork) -> Response:
    """Check the password with auth; the token becomes the session cookie."""
    fields = await form(request)
    answer = await uow.call("auth").http.post("/api/auth/login", json={"email": fields.get("email", ""),
                                                                        "password": fields.get("password", "")})
    if answer.status_code != 200:
        return render("login.html", answer.status_code, user=None, error=answer.json().get("error"))
    response = redirect("/me")
    cookie.set(response, answer.json()["token"])
    return response


@page("POST", "/logout")
async def logout(request: Request, uow: UnitOfWork) -> Response:
    """End the session at auth (its token stops working everywhere at once) and delete the cookie."""
    if token := token_from(request.headers, request.cookies):
        # 401 (a session that had ended already) is as good as 204 here: either way it is over.
        await uow.call("auth").http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    response = redirect("/")
    cookie.clear(response)
    return response


# -- approved users ----------------------------------------------------------------------------------
@page("GET", "/articles")
async def articles(request: Request, uow: UnitOfWork) -> Response:
    """Articles, newest first."""
    user = await signed_in(request, uow)
    category = request.query_params.get("category")
    found = await api(request, uow, "GET", "/api/articles" + (f"?category={quote(category)}" if category else ""),
                      user=user)
    return render("articles.html", user=user, articles=found, category=category)


@page("GET", "/articles/{article_id}")
async def article(article_id: str, request: Request, uow: UnitOfWork) -> Response:
    """An article with its comments and the comment form."""
    user = await signed_in(request, uow)
    found = await api(request, uow, "GET", f"/api/articles/{quote(article_id)}", user=user)
    comments = await api(request, uow, "GET", f"/api/articles/{quote(article_id)}/comments", user=user)
    return render("article.html", user=user, article=found, comments=comments)


@page("POST", "/articles/{article_id}/comments")
async def comment(article_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Post a comment, back to the article."""
    user = await signed_in(request, uow)
    await api(request, uow, "POST", f"/api/articles/{quote(article_id)}/comments",
              {"text": (await form(request)).get("text", "")}, user=user)
    return redirect(f"/articles/{quote(article_id)}")


@page("GET", "/webinars")
async def webinars(request: Request, uow: UnitOfWork) -> Response:
    """Every webinar, with reminders to ask for."""
    user = await signed_in(request, uow)
    found = await api(request, uow, "GET", "/api/webinars", user=user)
    mine = await api(request, uow, "GET", "/api/me/subscriptions", user=user)
    return render("webinars.html", user=user, webinars=found, subscribed=set(mine["webinars"]),
                  categories=mine["categories"])


@page("GET", "/webinars/{webinar_id}")
async def webinar(webinar_id: str, request: Request, uow: UnitOfWork) -> Response:
    """A webinar; while LIVE, its room (player area, chat, presence over the WebSocket)."""
    user = await signed_in(request, uow)
    found = await api(request, uow, "GET", f"/api/webinars/{quote(webinar_id)}", user=user)
    return render("room.html", user=user, webinar=found)


@page("POST", "/webinars/{webinar_id}/subscribe")
async def subscribe(webinar_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Ask for the reminder."""
    user = await signed_in(request, uow)
    await api(request, uow, "POST", f"/api/webinars/{quote(webinar_id)}/subscribe", user=user)
    return redirect("/webinars")


@page("POST", "/webinars/{webinar_id}/unsubscribe")
async def unsubscribe(webinar_id: str, request: Request, uow: UnitOfWork) -> Response:
    """No reminder after all."""
    user = await signed_in(request, uow)
    await api(request, uow, "DELETE", f"/api/webinars/{quote(webinar_id)}/subscribe", user=user)
    return redirect("/webinars")


@page("POST", "/categories/{category}/subscribe")
async def follow(category: str, request: Request, uow: UnitOfWork) -> Response:
    """Hear of a category's webinars and articles."""
    user = await signed_in(request, uow)
    await api(request, uow, "POST", f"/api/categories/{quote(category)}/subscribe", user=user)
    return redirect("/webinars")


@page("GET", "/me")
async def me(request: Request, uow: UnitOfWork) -> Response:
    """The personal page: profile, activity, points and unseen notifications (composed by bff)."""
    user = await signed_in(request, uow)
    return render("me.html", user=user, page=await api(request, uow, "GET", "/api/me", user=user))


@page("POST", "/me/notifications/{notification_id}/seen")
async def seen(notification_id: str, request: Request, uow: UnitOfWork) -> Response:
    """Mark a notification seen."""
    user = await signed_in(request, uow)
    await api(request, uow, "POST", f"/api/me/notifications/{quote(notification_id)}/seen", user=user)
    return redirect("/me")


# -- admins and analysts -----------------------------------------------------------------------------
@page("GET", "/admin")
async def admin(request: Request, uow: UnitOfWork) -> Response:
    """Users waiting for approval, and the forms to publish and schedule."""
    user = await signed_in(request, uow)
    pending = await api(request, uow, "GET", "/api/admin/users?status=PENDING_VERIFICATION", user=user)
    notice = {"approved": "Approved.", "rejected": "Rejected.", "published": "Article published.",
              "scheduled": "Webinar scheduled."}.get(request.query_params.get("done", ""))
    return render("admin.html", user=user, pending=pending, notice=notice)


@page("POST", "/admin/users/{user_id}/{decision}")
async def review(user_id: str, decision: str, request: Request, uow: UnitOfWork) -> Response:
    """Approve or reject a user."""
    user = await signed_in(request, uow)
    if decision not in ("approve", "reject"):
        return render("base.html", 404, user=user, error="not found")
    await api(request, uow, "POST", f"/api/admin/users/{quote(user_id)}/{decision}", user=user)
    return redirect(f"/admin?done={decision}d")


@page("GET", "/admin/users/{user_id}/document")
async def document(user_id: str, request: Request, uow: UnitOfWork) -> Response:
    """A user's proof, for the admin to look at."""
    user = await signed_in(request, uow)
    token = token_from(request.headers, request.cookies)
    answer = await uow.call("bff").http.get(f"/api/admin/users/{quote(user_id)}/document",
                                            headers={"Authorization": f"Bearer {token}"})
    if answer.status_code != 200:
        return render("base.html", answer.status_code, user=user, error=answer.json().get("error"))
    return Response(answer.content, media_type=answer.headers.get("content-type"),
                    headers={"Content-Disposition": answer.headers.get("content-disposition", "attachment")})


@page("POST", "/admin/articles")
async def publish(request: Request, uow: UnitOfWork) -> Response:
    """Publish an article from the form."""
    user = await signed_in(request, uow)
    fields = await form(request)
    body = {k: fields.get(k, "") for k in ("title", "body", "category")}
    await api(request, uow, "POST", "/api/admin/articles", body, user=user)
    return redirect("/admin?done=published")


@page("POST", "/admin/webinars")
async def schedule(request: Request, uow: UnitOfWork) -> Response:
    """Schedule a webinar from the form (its start is read as UTC)."""
    user = await signed_in(request, uow)
    fields = await form(request)
    starts = fields.get("startsAt", "")
    if len(starts) == 16:  # a datetime-local input: minutes, no zone
        starts += ":00+00:00"
    elif starts and not starts.endswith(("Z", "+00:00")):
        starts += "+00:00"
    body = {"title": fields.get("title", ""), "description": fields.get("description", ""),
            "category": fields.get("category", ""), "startsAt": starts,
            "durationMinutes": fields.get("durationMinutes", ""), "points": fields.get("points", "")}
    await api(request, uow, "POST", "/api/admin/webinars", body, user=user)
    return redirect("/admin?done=scheduled")


@page("GET", "/analytics")
async def analytics(request: Request, uow: UnitOfWork) -> Response:
    """Bar charts of the activity per day (statistics' own database, through bff)."""
    user = await signed_in(request, uow)
    days = (await api(request, uow, "GET", "/api/analytics/activity", user=user))["days"][-30:]
    charts = [chart(title, [(d["date"], d[key]) for d in days])
              for title, key in (("Registrations", "registrations"), ("Comments", "comments"),
                                 ("Webinar viewers", "viewers"), ("Minutes watched", "watchedMinutes"))]
    return render("analytics.html", user=user, charts=charts)


def chart(title: str, values: list[tuple[str, int]]) -> dict[str, Any]:
    """An SVG bar chart's geometry: bars scaled to 100 px at the largest value."""
    top = max((v for _, v in values), default=0) or 1
    width = 30
    bars = [{"x": 10 + i * (width + 6), "w": width, "height": round(100 * v / top), "value": v, "label": label}
            for i, (label, v) in enumerate(values)]
    return {"title": title, "bars": bars if any(v for _, v in values) else [], "width": max(200, 20 + len(bars) * 36)}


@page("GET", "/{missing:path}")
async def not_found(missing: str, request: Request, uow: UnitOfWork) -> Response:
    """Any other path: an HTML 404 (declared last, so every page above matches first)."""
    return render("base.html", 404, user=await who(request, uow), error="This page does not exist.")
