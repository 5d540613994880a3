"""The server-rendered pages through the edge, as a browser without JavaScript uses them (cookie session)."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx

from academy.tests.conftest import PDF, Academy


async def browser(academy: Academy) -> httpx.AsyncClient:
    """A client with its own cookie jar, like a browser."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=academy.runtime.app), base_url="http://academy.test")


async def sign_in(client: httpx.AsyncClient, email: str, password: str = "password123") -> httpx.Response:
    """Log in through the form."""
    return await client.post("/login", data={"email": email, "password": password})


async def test_register_log_in_and_wait_for_approval(academy: Academy) -> None:
    async with await browser(academy) as ana:
        assert "Lifelong learning" in (await ana.get("/")).text
        assert "Proof of qualification" in (await ana.get("/register")).text
        registered = await ana.post("/register", data={"email": "ana@example.org", "password": "password123",
                                                       "fullName": "Ana Novak", "licenceNumber": "L-1"},
                                    files={"document": ("proof.pdf", PDF, "application/pdf")})
        assert registered.status_code == 200 and "Registered" in registered.text
        forged = await ana.post("/register", data={"email": "x@example.org", "password": "password123",
                                                   "fullName": "X", "licenceNumber": "L-2"},
                                files={"document": ("proof.pdf", b"text", "application/pdf")})
        assert forged.status_code == 422 and "PDF, PNG or JPEG" in forged.text
        wrong = await sign_in(ana, "ana@example.org", "nope-nope")
        assert wrong.status_code == 401 and "invalid email or password" in wrong.text
        signed = await sign_in(ana, "ana@example.org")
        assert signed.status_code == 303 and signed.headers["location"] == "/me"
        assert "PENDING_VERIFICATION" in (await ana.get("/me")).text
        waiting = await ana.get("/articles")
        assert waiting.status_code == 403 and "waiting for approval" in waiting.text
        assert (await ana.get("/admin")).status_code == 403
        token = ana.cookies["jwt"]
        await ana.post("/logout")
        assert (await ana.get("/me")).headers.get("location") == "/login"
        kept = await ana.get("/me", cookies={"jwt": token})  # the old cookie, kept by someone: revoked at auth
        assert kept.headers.get("location") == "/login"
        assert (await academy.request("GET", "/api/me", token)).status_code == 401


async def test_admin_approves_publishes_and_schedules_through_the_pages(academy: Academy) -> None:
    await academy.staff()
    await academy.register("ana@example.org", full_name="Ana Novak")
    async with await browser(academy) as admin, await browser(academy) as ana:
        await sign_in(admin, "admin@example.org")
        page = (await admin.get("/admin")).text
        assert "ana@example.org" in page
        user_id = re.search(r'/admin/users/(\w+)/approve', page).group(1)  # type: ignore[union-attr]
        assert (await admin.get(f"/admin/users/{user_id}/document")).content == PDF
        assert (await admin.post(f"/admin/users/{user_id}/approve")).headers["location"] == "/admin?done=approved"
        assert "ana@example.org" not in (await admin.get("/admin")).text
        await admin.post("/admin/articles", data={"title": "Sepsis 2026", "body": "What changed.",
                                                  "category": "infectious"})
        starts = (academy.clock.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        scheduled = await admin.post("/admin/webinars", data={"title": "ECG basics", "description": "d",
                                                              "category": "cardiology", "startsAt": starts,
                                                              "durationMinutes": "30", "points": "2"})
        assert scheduled.headers["location"] == "/admin?done=scheduled"

        await sign_in(ana, "ana@example.org")
        articles = (await ana.get("/articles")).text
        article_id = re.search(r'/articles/(\w+)"', articles).group(1)  # type: ignore[union-attr]
        await ana.post(f"/articles/{article_id}/comments", data={"text": "Great summary"})
        assert "Great summary" in (await ana.get(f"/articles/{article_id}")).text
        listing = (await ana.get("/webinars")).text
        webinar_id = re.search(r'/webinars/(\w+)/subscribe', listing).group(1)  # type: ignore[union-attr]
        await ana.post(f"/webinars/{webinar_id}/subscribe")
        assert f"/webinars/{webinar_id}/unsubscribe" in (await ana.get("/webinars")).text
        assert "ECG basics" in (await ana.get("/")).text
        missing = await ana.get("/no/such/page")
        assert missing.status_code == 404 and "does not exist" in missing.text
        await academy.advance(timedelta(hours=1))  # the reminder
        me = (await ana.get("/me")).text
        assert "ECG basics starts in one hour" in me
        assert "The room opens at the start" in (await ana.get(f"/webinars/{webinar_id}")).text
        await academy.advance(timedelta(hours=1))
        assert 'new WebSocket' in (await ana.get(f"/webinars/{webinar_id}")).text


async def test_the_analyst_page(academy: Academy) -> None:
    await academy.staff("analyst@example.org", "ANALYST")
    admin = await academy.staff()
    await academy.user(admin)
    await academy.settle()
    async with await browser(academy) as analyst:
        await sign_in(analyst, "analyst@example.org")
        page = await analyst.get("/analytics")
        assert page.status_code == 200 and "<svg" in page.text and "Registrations" in page.text
    async with await browser(academy) as other:
        await sign_in(other, "admin@example.org")
        assert (await other.get("/analytics")).status_code == 403
