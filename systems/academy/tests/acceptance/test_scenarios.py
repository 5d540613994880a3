"""Spec scenarios T1-T5 and T7-T10 through the edge, on both topologies, on the virtual clock."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest
from websockets.exceptions import ConnectionClosed

from academy.contracts.events import NotificationQueued
from academy.services import live
from academy.system import build
from academy.tests.conftest import Academy, receive, room, serving
from junction.clock import VirtualClock
from junction.mail import MailSink
from junction.queues import QueueSource
from junction.runtime import Runtime
from junction.testing import Distributed, running


async def test_t1_registration_and_approval(academy: Academy) -> None:
    admin = await academy.staff()
    registered = await academy.register("dr.ana@example.org")
    assert registered.status_code == 201
    assert registered.json()["status"] == "PENDING_VERIFICATION"
    ana = await academy.login("dr.ana@example.org")
    refused = await academy.request("GET", "/api/articles", ana)
    assert (refused.status_code, refused.json()) == (403, {"error": "account not approved"})
    approved = await academy.request("POST", f"/api/admin/users/{registered.json()['id']}/approve", admin)
    assert (approved.status_code, approved.json()) == (200, {"status": "APPROVED"})
    assert (await academy.request("GET", "/api/articles", ana)).status_code == 200


async def test_t2_only_admins_author(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    article = {"title": "Sepsis bundle 2026", "body": "What changed.", "category": "infectious"}
    assert (await academy.request("POST", "/api/admin/articles", doctor, json=article)).status_code == 403
    published = await academy.request("POST", "/api/admin/articles", admin, json=article)
    assert published.status_code == 201
    assert {k: published.json()[k] for k in article} == article
    listed = (await academy.request("GET", "/api/articles", doctor)).json()
    assert [a["id"] for a in listed] == [published.json()["id"]]


async def test_t3_comments(academy: Academy) -> None:
    admin = await academy.staff()
    user_id, doctor = await academy.user(admin, name="Ana Novak")
    article = (await academy.request("POST", "/api/admin/articles", admin, json={
        "title": "A", "body": "B", "category": "cardiology"})).json()
    posted = await academy.request("POST", f"/api/articles/{article['id']}/comments", doctor,
                                   json={"text": "Great summary"})
    assert posted.status_code == 201
    comments = (await academy.request("GET", f"/api/articles/{article['id']}/comments", doctor)).json()
    assert len(comments) == 1
    assert comments[0]["text"] == "Great summary"
    assert comments[0]["author"] == {"id": user_id, "fullName": "Ana Novak"}


async def test_t4_one_reminder_an_hour_before(academy: Academy) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin, "dr.ana@example.org")
    webinar = await academy.webinar(admin, 61, title="Arrhythmias in practice")
    assert (await academy.request("POST", f"/api/webinars/{webinar['id']}/subscribe", doctor)).status_code == 204
    await academy.advance(timedelta(seconds=59))
    assert await academy.mails() == []  # not yet: the reminder is due at startsAt - 60 min
    await academy.advance(timedelta(minutes=1))
    mails = await academy.mails()
    assert len(mails) == 1
    assert mails[0]["To"][0]["Address"] == "dr.ana@example.org"
    assert "Arrhythmias in practice" in mails[0]["Subject"] and "Arrhythmias in practice" in mails[0]["Text"]
    await academy.advance(timedelta(minutes=75))  # past the start and the end
    assert len(await academy.mails()) == 1
    unseen = (await academy.me(doctor))["unseenNotifications"]
    assert [n["kind"] for n in unseen] == ["reminder"]
    assert unseen[0]["link"] == f"/webinars/{webinar['id']}"


async def test_t5_no_reminder_after_the_start(where: Distributed | None, tmp_path: Path, mail_sink: MailSink) -> None:
    """notify-center is stopped across the reminder and the start; started again, it delivers nothing."""
    clock = VirtualClock()
    others = [s.name for s in build().services if s.name != "notify-center"]
    data = tmp_path / "data"
    async with running(build(), data, where, clock=clock, only=others) as runtime:
        academy = Academy(runtime, clock, mail_sink)
        admin = await academy.staff()
        _, doctor = await academy.user(admin, "dr.ana@example.org")
        webinar = await academy.webinar(admin, 61, title="Sepsis update")
        await academy.request("POST", f"/api/webinars/{webinar['id']}/subscribe", doctor)
        await academy.advance(timedelta(minutes=2))  # the reminder is queued, nobody consumes it
        queued = [e for e in await runtime.service("notify-runner").store.read_log(0, 1000)
                  if e.type == NotificationQueued.event_name]
        assert len(queued) == 1
        await academy.advance(timedelta(minutes=60))  # W has started
        async with running(build(), data, where, clock=clock, only=["notify-center"]) as center:
            await academy.advance(timedelta(seconds=1))
            notices = await center.client("notify-center").get(f"/users/{queued[0].data['userId']}/notifications")
            assert notices.json() == []
            assert await _dead_letters(center, where) == 1  # expired in the queue: dead-lettered, not delivered
        assert await academy.mails() == []
        await academy.http.aclose()


async def test_queued_reminders_survive_a_stopped_notification_center(where: Distributed | None, tmp_path: Path,
                                                                       mail_sink: MailSink) -> None:
    """The counterpart of T5: started again before the start, notify-center delivers what waited in the queue."""
    clock = VirtualClock()
    others = [s.name for s in build().services if s.name != "notify-center"]
    data = tmp_path / "data"
    async with running(build(), data, where, clock=clock, only=others) as runtime:
        academy = Academy(runtime, clock, mail_sink)
        admin = await academy.staff()
        _, doctor = await academy.user(admin, "dr.ana@example.org")
        webinar = await academy.webinar(admin, 61, title="Sepsis update")
        await academy.request("POST", f"/api/webinars/{webinar['id']}/subscribe", doctor)
        await academy.advance(timedelta(minutes=30))  # queued at minute 1, nobody consumes it for half an hour
        assert await academy.mails() == []
        async with running(build(), data, where, clock=clock, only=["notify-center"]):
            await academy.advance(timedelta(seconds=1))
            assert [m["To"][0]["Address"] for m in await academy.mails()] == ["dr.ana@example.org"]
        await academy.http.aclose()


async def _dead_letters(center: Runtime, where: Distributed | None) -> int:
    """Messages the notification queue dead-lettered (RabbitMQ's dead-letter queue, or the embedded queue's count)."""
    worker = center.service("notify-center").subscriptions["queue:notify-runner"]
    if where is None or where.rabbit is None:
        assert isinstance(worker.source, QueueSource)
        return worker.source.dead_lettered
    connection = await aio_pika.connect(where.rabbit.url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.declare_queue(where.rabbit.dead_letter_queue("notify-center", "queue:notify-runner"),
                                           passive=True)
        return dead.declaration_result.message_count or 0


async def test_t7_go_live_saga(academy: Academy, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = await academy.staff()
    _, doctor = await academy.user(admin)
    webinar = await academy.webinar(admin, 10)
    async with serving(academy.runtime.app) as url:
        early = await room(url, webinar["id"], doctor)
        with pytest.raises(ConnectionClosed) as refused:
            await early.recv()
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4409
        await academy.advance(timedelta(minutes=10))
        assert await academy.status_of(webinar["id"], doctor) == "LIVE"
        socket = await room(url, webinar["id"], doctor)
        presence = await receive(socket, "presence")
        assert [v["fullName"] for v in presence["viewers"]] == ["Doctor1"]
        await socket.close()

    # the room cannot be opened: the webinar goes back to SCHEDULED with the failure, then the retry succeeds
    second = await academy.webinar(admin, 10, title="Second")
    monkeypatch.setattr(live, "MAX_OPEN_ROOMS", 0)
    await academy.advance(timedelta(minutes=10))
    assert await academy.status_of(second["id"], doctor) == "SCHEDULED"
    failure = (await academy.runtime.client("content").get(f"/webinars/{second['id']}")).json()["failure"]
    assert "room could not be opened" in failure and "no room capacity" in failure
    monkeypatch.setattr(live, "MAX_OPEN_ROOMS", 1000)
    await academy.advance(timedelta(seconds=30))
    assert await academy.status_of(second["id"], doctor) == "LIVE"


async def test_t8_chat_reaches_the_other_viewer(academy: Academy) -> None:
    admin = await academy.staff()
    ana_id, ana = await academy.user(admin, name="Ana Novak")
    _, ben = await academy.user(admin, name="Ben Kos")
    webinar = await academy.webinar(admin, 5)
    await academy.advance(timedelta(minutes=5))
    async with serving(academy.runtime.app) as url:
        first = await room(url, webinar["id"], ana)
        await receive(first, "presence")
        second = await room(url, webinar["id"], ben)
        seen = await receive(first, "presence")
        assert sorted(v["fullName"] for v in seen["viewers"]) == ["Ana Novak", "Ben Kos"]
        await first.send(json.dumps({"type": "chat", "text": "Hello from Ana"}))
        message = await receive(second, "chat")
        assert message["from"] == {"id": ana_id, "fullName": "Ana Novak"}
        assert message["text"] == "Hello from Ana"
        await first.close()
        await second.close()


async def test_t9_points_by_the_80_percent_rule(academy: Academy) -> None:
    admin = await academy.staff()
    _, ana = await academy.user(admin)
    _, ben = await academy.user(admin)
    webinar = await academy.webinar(admin, 5, duration=10, points=2)
    await academy.advance(timedelta(minutes=5))
    async with serving(academy.runtime.app) as url:
        watcher = await room(url, webinar["id"], admin)  # sees every join and leave
        await receive(watcher, "presence")
        sockets = {}
        for name, token in (("ana", ana), ("ben", ben)):
            sockets[name] = await room(url, webinar["id"], token)
            await receive(watcher, "presence")
        for beat in range(37):  # 15 s apart: 0 s … 540 s
            for name, socket in list(sockets.items()):
                await socket.send(json.dumps({"type": "heartbeat"}))
                await receive(socket, "heartbeat")
                if (name, beat) in (("ben", 12), ("ana", 36)):  # ben leaves after 3 min, ana after 9
                    await socket.close()
                    del sockets[name]
                    await receive(watcher, "presence")  # the leave is recorded
            await academy.advance(timedelta(seconds=15))
        await academy.advance(timedelta(minutes=2))  # the end
        assert (await receive(watcher, "ended")) == {"type": "ended"}
    assert await academy.status_of(webinar["id"], ana) == "ENDED"
    ana_page, ben_page = await academy.me(ana), await academy.me(ben)
    assert ana_page["points"] == {"year": 2026, "total": 2}
    assert ben_page["points"] == {"year": 2026, "total": 0}
    assert ana_page["statistics"] == {"watchedMinutes": 9, "webinarsAttended": 1}
    assert ben_page["statistics"] == {"watchedMinutes": 3, "webinarsAttended": 1}


async def test_t10_new_article_notification(academy: Academy) -> None:
    admin = await academy.staff()
    _, ben = await academy.user(admin)
    _, other = await academy.user(admin)
    assert (await academy.request("POST", "/api/categories/cardiology/subscribe", ben)).status_code == 204
    published = await academy.request("POST", "/api/admin/articles", admin, json={
        "title": "AF anticoagulation", "body": "…", "category": "cardiology"})
    assert published.status_code == 201
    await academy.settle()
    unseen = (await academy.me(ben))["unseenNotifications"]
    assert len(unseen) == 1
    assert unseen[0]["kind"] == "new-article" and "AF anticoagulation" in unseen[0]["title"]
    assert unseen[0]["seen"] is False and unseen[0]["link"] == f"/articles/{published.json()['id']}"
    assert (await academy.me(other))["unseenNotifications"] == []
    seen = await academy.request("POST", f"/api/me/notifications/{unseen[0]['id']}/seen", ben)
    assert seen.status_code == 204
    assert (await academy.me(ben))["unseenNotifications"] == []
    mails = await academy.mails()
    assert len(mails) == 1 and "AF anticoagulation" in mails[0]["Subject"]
