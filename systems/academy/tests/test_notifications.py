"""Reminders, the per-recipient queue and the saga's corners, embedded on the virtual clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from academy.cli import create_user
from academy.contracts.events import GoLiveStep, NotificationQueued
from academy.services import live, notify_center, scheduler
from academy.tests.conftest import Academy, open_academy
from junction.mail import MailSink


async def test_each_subscriber_is_reminded_once(academy: Academy) -> None:
    admin = await academy.staff()
    webinar = await academy.webinar(admin, 90, title="Heart failure", category="cardiology")
    people = {}
    for name in ("by-webinar", "by-category", "by-both", "unsubscribed", "other-category"):
        _, people[name] = await academy.user(admin, f"{name}@example.org")
    for name in ("by-webinar", "by-both", "unsubscribed"):
        await academy.request("POST", f"/api/webinars/{webinar['id']}/subscribe", people[name])
    for name, category in (("by-category", "cardiology"), ("by-both", "cardiology"), ("other-category", "oncology")):
        await academy.request("POST", f"/api/categories/{category}/subscribe", people[name])
    await academy.request("DELETE", f"/api/webinars/{webinar['id']}/subscribe", people["unsubscribed"])
    await academy.register("pending@example.org")  # not approved: never reminded
    await academy.advance(timedelta(minutes=31))
    recipients = sorted(m["To"][0]["Address"] for m in await academy.mails())
    assert recipients == ["by-both@example.org", "by-category@example.org", "by-webinar@example.org"]


async def test_a_webinar_less_than_an_hour_ahead_is_reminded_at_once(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin, "ana@example.org")
    await academy.request("POST", "/api/categories/cardiology/subscribe", doctor)
    await academy.webinar(admin, 20, title="Soon")
    await academy.settle()
    assert [m["Subject"] for m in await academy.mails()] == ["Reminder: Soon starts in one hour"]


async def test_a_failing_recipient_does_not_hold_back_the_others(academy: Academy,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await academy.staff()
    for name in ("ana", "ben", "eva"):
        _, token = await academy.user(admin, f"{name}@example.org", name=name.title())
        await academy.request("POST", "/api/categories/cardiology/subscribe", token)
    original = notify_center.mail_text

    def text(event: NotificationQueued) -> str:
        if event.full_name == "Ben":
            raise ValueError("cannot render for Ben")
        return original(event)

    monkeypatch.setattr(notify_center, "mail_text", text)
    await academy.request("POST", "/api/admin/articles", admin, json={"title": "AF", "body": "…",
                                                                      "category": "cardiology"})
    await academy.settle()
    assert sorted(m["To"][0]["Address"] for m in await academy.mails()) == ["ana@example.org", "eva@example.org"]
    parked = await academy.runtime.service("notify-center").store.parked()
    assert len(parked) == 1 and "cannot render for Ben" in (parked[0].error or "")


async def test_the_saga_steps_are_idempotent(academy: Academy) -> None:
    admin = await academy.staff()
    webinar = await academy.webinar(admin, 5)
    await academy.advance(timedelta(minutes=5))
    assert await academy.status_of(webinar["id"], admin) == "LIVE"
    payload = {"webinarId": webinar["id"], "title": webinar["title"], "category": webinar["category"],
               "startsAt": webinar["startsAt"].replace("Z", "+00:00"), "durationMinutes": 10, "points": 2,
               "attempt": 1}
    uow = academy.runtime.service("scheduler").uow()
    await scheduler.go_live(payload, uow)  # the timer fired again (at least once): nothing changes
    await uow.commit()
    assert await academy.status_of(webinar["id"], admin) == "LIVE"
    steps = [e.event for e in await academy.runtime.service("scheduler").store.read_log(0, 1000)
             if e.type == GoLiveStep.event_name]
    assert [s.step for s in steps if isinstance(s, GoLiveStep)] == ["started", "marked-live", "completed"] * 2


async def test_a_webinar_whose_room_never_opens_still_ends(academy: Academy, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    webinar = await academy.webinar(admin, 5, duration=2)
    monkeypatch.setattr(live, "MAX_OPEN_ROOMS", 0)
    await academy.advance(timedelta(minutes=8))
    assert await academy.status_of(webinar["id"], doctor) == "ENDED"
    assert (await academy.me(doctor))["points"]["total"] == 0
    attempts = [e.event for e in await academy.runtime.service("scheduler").store.read_log(0, 1000)
                if e.type == GoLiveStep.event_name]
    assert sum(1 for s in attempts if isinstance(s, GoLiveStep) and s.step == "compensated") == 4  # every 30 s


async def test_create_admin_makes_an_approved_admin(tmp_path: Path, mail_sink: MailSink) -> None:
    user = await create_user(tmp_path / "data", "root@example.org", "secret-password", "Root", "ADMIN")
    async with open_academy(tmp_path / "data", mail_sink) as academy:
        token = (await academy.http.post("/api/auth/login", json={"email": "root@example.org",
                                                                  "password": "secret-password"})).json()["token"]
        assert (await academy.me(token))["profile"] == {
            "id": user["id"], "email": "root@example.org", "fullName": "Root", "licenceNumber": "-",
            "status": "APPROVED", "role": "ADMIN"}
        assert (await academy.request("GET", "/api/admin/users", token)).status_code == 200
