"""Bad input at the edge: each case gets its documented status (or close code) and stores nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from academy.contracts.api import MAX_DOCUMENT
from academy.tests.conftest import JPEG, PDF, PNG, Academy, receive, room, serving


async def stored(academy: Academy) -> tuple[int, ...]:
    """The heads of every service's log, and content's users: what a refused request must not change."""
    heads = [await academy.runtime.service(name).store.head() for name in sorted(academy.runtime.services)]
    users = (await academy.runtime.client("content").get("/users")).json()
    return (*heads, len(users))


@pytest.mark.parametrize(("document", "status"), [
    (b"just text, not a pdf", 422),
    (b"", 422),
    (b"GIF89a" + b"\x00" * 20, 422),
    (b"<html>%PDF-1.4</html>", 422),  # the signature must open the file
    (PDF + b"0" * (MAX_DOCUMENT + 1 - len(PDF)), 413),
])
async def test_forged_or_oversized_documents_are_refused(academy: Academy, document: bytes, status: int) -> None:
    before = await stored(academy)
    answer = await academy.register("mallory@example.org", document=document, filename="proof.pdf")
    assert answer.status_code == status, answer.text
    assert "error" in answer.json()
    await academy.settle()
    assert await stored(academy) == before


@pytest.mark.parametrize("document", [PDF, PNG, JPEG])
async def test_pdf_png_and_jpeg_are_accepted_by_content(academy: Academy, document: bytes) -> None:
    answer = await academy.register("ana@example.org", document=document, filename="whatever.bin")
    assert answer.status_code == 201, answer.text
    admin = await academy.staff()
    download = await academy.request("GET", f"/api/admin/users/{answer.json()['id']}/document", admin)
    assert download.status_code == 200 and download.content == document


@pytest.mark.parametrize(("fields", "status"), [
    ({"email": "not-an-email"}, 422),
    ({"password": "short"}, 422),
    ({"fullName": "   "}, 422),
    ({"licenceNumber": ""}, 422),
])
async def test_invalid_registration_fields(academy: Academy, fields: dict[str, str], status: int) -> None:
    before = await stored(academy)
    form = {"email": "ana@example.org", "password": "password123", "fullName": "Ana", "licenceNumber": "L-1", **fields}
    answer = await academy.http.post("/api/auth/register", data=form,
                                     files={"document": ("proof.pdf", PDF, "application/pdf")})
    assert answer.status_code == status, answer.text
    assert await stored(academy) == before


async def test_registration_that_is_not_a_form(academy: Academy) -> None:
    answer = await academy.http.post("/api/auth/register", json={"email": "ana@example.org"})
    assert (answer.status_code, answer.json()) == (400, {"error": "expected multipart/form-data"})
    no_document = await academy.http.post("/api/auth/register", data={"email": "ana@example.org"},
                                          files={"other": ("x.txt", b"x", "text/plain")})
    assert no_document.status_code == 422


async def test_duplicate_email_and_wrong_passwords(academy: Academy) -> None:
    assert (await academy.register("ana@example.org")).status_code == 201
    before = await stored(academy)
    again = await academy.register("ANA@example.org")
    assert (again.status_code, again.json()) == (409, {"error": "e-mail already registered"})
    for body in ({"email": "ana@example.org", "password": "wrong-one"},
                 {"email": "nobody@example.org", "password": "password123"},
                 {"email": "ana@example.org"}):
        answer = await academy.http.post("/api/auth/login", json=body)
        assert (answer.status_code, answer.json()) == (401, {"error": "invalid email or password"})
    assert await stored(academy) == before


WEBINAR = {"title": "T", "category": "cardiology", "startsAt": "2099-01-01T10:00:00Z", "durationMinutes": 60,
           "points": 2}
ARTICLE = {"title": "T", "body": "B", "category": "cardiology"}
# (method, path, body, who may call it: "any" signed-in user, "approved", "ADMIN" or "ANALYST")
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/me", None, "any"),
    ("GET", "/api/me/notifications", None, "any"),
    ("GET", "/api/me/subscriptions", None, "approved"),
    ("POST", "/api/me/notifications/x/seen", None, "any"),
    ("GET", "/api/articles", None, "approved"),
    ("GET", "/api/articles/{article}", None, "approved"),
    ("GET", "/api/articles/{article}/comments", None, "approved"),
    ("POST", "/api/articles/{article}/comments", {"text": "hi"}, "approved"),
    ("GET", "/api/webinars", None, "approved"),
    ("GET", "/api/webinars/{webinar}", None, "approved"),
    ("POST", "/api/webinars/{webinar}/subscribe", None, "approved"),
    ("DELETE", "/api/webinars/{webinar}/subscribe", None, "approved"),
    ("POST", "/api/categories/cardiology/subscribe", None, "approved"),
    ("DELETE", "/api/categories/cardiology/subscribe", None, "approved"),
    ("GET", "/api/admin/users", None, "ADMIN"),
    ("POST", "/api/admin/users/{user}/approve", None, "ADMIN"),
    ("POST", "/api/admin/users/{user}/reject", None, "ADMIN"),
    ("GET", "/api/admin/users/{user}/document", None, "ADMIN"),
    ("POST", "/api/admin/articles", ARTICLE, "ADMIN"),
    ("POST", "/api/admin/webinars", WEBINAR, "ADMIN"),
    ("GET", "/api/analytics/activity", None, "ANALYST"),
]


async def test_every_route_refuses_the_anonymous_the_unapproved_and_the_wrong_role(academy: Academy) -> None:
    admin = await academy.staff()
    analyst = await academy.staff("analyst@example.org", "ANALYST")
    _, doctor = await academy.user(admin)
    pending = await academy.register("pending@example.org")
    pending_token = await academy.login("pending@example.org")
    rejected = await academy.register("rejected@example.org")
    await academy.request("POST", f"/api/admin/users/{rejected.json()['id']}/reject", admin)
    rejected_token = await academy.login("rejected@example.org")
    ids = {"article": (await academy.request("POST", "/api/admin/articles", admin, json=ARTICLE)).json()["id"],
           "webinar": (await academy.request("POST", "/api/admin/webinars", admin, json=WEBINAR)).json()["id"],
           "user": pending.json()["id"]}
    await academy.settle()
    before = await stored(academy)
    callers = {"anonymous": None, "forged": doctor[:-4] + "AAAA", "pending": pending_token,
               "rejected": rejected_token, "doctor": doctor, "admin": admin, "analyst": analyst}
    for method, template, body, allowed in ROUTES:
        path = template.format(**ids)
        for who, token in callers.items():
            if who in ("anonymous", "forged"):
                expected = (401, {"error": "not authenticated"})
            elif allowed == "approved" and who in ("pending", "rejected"):
                expected = (403, {"error": "account not approved"})
            elif allowed in ("ADMIN", "ANALYST") and who != allowed.lower():
                expected = (403, {"error": f"{allowed.lower()} only"})
            else:
                continue  # a caller who may: not called here (the scenarios show what they get)
            answer = await academy.request(method, path, token, json=body)
            assert (answer.status_code, answer.json()) == expected, f"{who} {method} {path}"
    assert await stored(academy) == before


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/api/admin/webinars", {**WEBINAR, "startsAt": "2099-01-01T10:00:00"}, 422),  # no time zone
    ("/api/admin/webinars", {**WEBINAR, "durationMinutes": 0}, 422),
    ("/api/admin/webinars", {**WEBINAR, "startsAt": "2020-01-01T10:00:00Z"}, 422),  # in the past
    ("/api/admin/webinars", {**WEBINAR, "points": -1}, 422),
    ("/api/admin/webinars", {**WEBINAR, "category": "a b"}, 422),
    ("/api/admin/articles", {**ARTICLE, "title": ""}, 422),
    ("/api/admin/articles", {**ARTICLE, "extra": 1}, 422),
    ("/api/admin/articles", None, 422),
])
async def test_invalid_bodies(academy: Academy, path: str, body: Any, status: int) -> None:
    admin = await academy.staff()
    before = await stored(academy)
    answer = await academy.request("POST", path, admin, json=body)
    assert answer.status_code == status, answer.text
    broken = await academy.request("POST", path, admin, content=b"{not json")
    assert (broken.status_code, broken.json()) == (400, {"error": "invalid request body"})
    assert await stored(academy) == before


async def test_unknown_things(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    await academy.settle()
    before = await stored(academy)
    for method, path, body in [("POST", "/api/webinars/999999999/subscribe", None),
                               ("DELETE", "/api/webinars/999999999/subscribe", None),
                               ("GET", "/api/webinars/999999999", None),
                               ("GET", "/api/articles/999999999", None),
                               ("POST", "/api/articles/999999999/comments", {"text": "x"}),
                               ("POST", "/api/me/notifications/nope/seen", None)]:
        answer = await academy.request(method, path, doctor, json=body)
        assert answer.status_code == 404, f"{method} {path}: {answer.text}"
    for path in ("/api/admin/users/999/approve", "/api/admin/users/999/reject"):
        assert (await academy.request("POST", path, admin)).status_code == 404
    assert (await academy.request("GET", "/api/webinars?status=DONE", doctor)).status_code == 400
    assert (await academy.request("POST", "/api/categories/a%20b/subscribe", doctor)).status_code == 400
    assert await stored(academy) == before


async def test_room_refusals(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    await academy.register("pending@example.org")
    pending = await academy.login("pending@example.org")
    scheduled = await academy.webinar(admin, 30)
    live = await academy.webinar(admin, 5)
    await academy.advance(timedelta(minutes=5))
    async with serving(academy.runtime.app) as url:
        for webinar_id, token, code in [(live["id"], None, 4401), (live["id"], "forged", 4401),
                                        (live["id"], pending, 4403), ("999999999", doctor, 4404),
                                        (scheduled["id"], doctor, 4409)]:
            socket = await room(url, webinar_id, token)
            with pytest.raises(ConnectionClosed) as closed:
                await socket.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_malformed_frames_and_chat_floods(academy: Academy) -> None:
    admin = await academy.staff()
    _, ana = await academy.user(admin, name="Ana")
    _, ben = await academy.user(admin, name="Ben")
    webinar = await academy.webinar(admin, 5)
    await academy.advance(timedelta(minutes=5))
    async with serving(academy.runtime.app) as url:
        sender = await room(url, webinar["id"], ana)
        await receive(sender, "presence")
        listener = await room(url, webinar["id"], ben)
        await receive(listener, "presence")
        await receive(sender, "presence")  # ben came in
        bad: list[str | bytes] = [b"\x00binary", "not json", "[1, 2]", '{"text": "no type"}', '{"type": "dance"}',
                                  json.dumps({"type": "chat", "text": ""}),
                                  json.dumps({"type": "chat", "text": "   "}),
                                  json.dumps({"type": "chat", "text": 5}),
                                  json.dumps({"type": "chat", "text": "x" * 2001})]
        for frame in bad:
            await sender.send(frame)
            assert (await receive(sender))["type"] == "error", frame
        for n in range(5):
            await sender.send(json.dumps({"type": "chat", "text": f"message {n}"}))
        await sender.send(json.dumps({"type": "chat", "text": "one too many"}))
        got = [(await receive(listener, "chat"))["text"] for _ in range(5)]
        assert got == [f"message {n}" for n in range(5)]
        answers = [await receive(sender) for _ in range(6)]
        assert [a["type"] for a in answers].count("chat") == 5
        assert answers[-1] == {"type": "error", "error": "rate limit: at most 5 messages per 10 s"}
        await academy.advance(timedelta(seconds=10))  # the window moved on
        await sender.send(json.dumps({"type": "chat", "text": "x" * 2000}))
        assert len((await receive(listener, "chat"))["text"]) == 2000  # nothing of the refused ones came through
        await sender.close()
        await listener.close()


async def test_logout_revokes_the_token_on_the_api_and_the_room(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    other = await academy.login("admin@example.org")  # a second session of the admin's: it stays
    live = await academy.webinar(admin, 5)
    await academy.advance(timedelta(minutes=5))
    assert (await academy.request("GET", "/api/me", doctor)).status_code == 200
    assert (await academy.request("POST", "/api/auth/logout", doctor)).status_code == 204
    answer = await academy.request("GET", "/api/me", doctor)
    assert (answer.status_code, answer.json()) == (401, {"error": "not authenticated"})
    assert (await academy.request("POST", "/api/auth/logout", doctor)).status_code == 204  # over already: fine
    assert (await academy.request("POST", "/api/auth/logout")).status_code == 401
    assert (await academy.request("POST", "/api/auth/logout", "forged")).status_code == 401
    assert (await academy.request("POST", "/api/auth/logout", admin)).status_code == 204
    assert (await academy.request("GET", "/api/me", other)).status_code == 200
    async with serving(academy.runtime.app) as url:
        socket = await room(url, live["id"], doctor)
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        watching = await room(url, live["id"], other)
        assert (await receive(watching, "presence"))["viewers"]
        await watching.close()
