"""notify-center: consumes the per-recipient queue (``junction.queues``: RabbitMQ distributed, the platform's
queue embedded) and delivers each message twice over: on-site (its own table, shown on the personal page)
and by e-mail over SMTP (``junction.mail``: queued in the handler's transaction, sent once). A message
past its deadline is never delivered: the queue dead-letters it, and the handler checks again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Boolean, Column, Float, String, and_, select, update
from starlette.requests import Request
from starlette.responses import Response

from academy.contracts.api import iso
from academy.contracts.events import NotificationQueued
from junction.errors import NotFound
from junction.mail import Mailer
from junction.queues import queued
from junction.service import Service
from junction.uow import UnitOfWork

log = structlog.get_logger()
service = Service("notify-center", worker=27)
mailer = Mailer(service, mail_from="Academy <academy@example.org>")

notifications = service.table(
    "notifications",
    Column("id", String, primary_key=True),
    Column("user_id", String, nullable=False, index=True),
    Column("kind", String, nullable=False),
    Column("title", String, nullable=False),
    Column("link", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("seen", Boolean, nullable=False),
)


def mail_text(event: NotificationQueued) -> str:
    """The e-mail's text."""
    return (f"Hello {event.full_name},\n\n{event.title}.\n\nOpen it on the academy: {event.link}\n\n"
            "Lifelong learning for medical staff\n")


@queued(service, "notify-runner", NotificationQueued)
async def deliver(event: NotificationQueued, uow: UnitOfWork) -> None:
    """On-site and by e-mail, unless the message's deadline has passed."""
    if event.expires_at is not None and datetime.fromisoformat(event.expires_at) <= uow.now():
        log.info("expired notification dropped", notification=event.notification_id)
        return
    uow.upsert(notifications, {"id": event.notification_id, "user_id": event.user_id, "kind": event.kind,
                               "title": event.title, "link": event.link, "created_at": uow.now().timestamp(),
                               "seen": False}, keys=["id"])
    subject = f"Reminder: {event.title}" if event.kind == "reminder" else event.title
    mailer.send(uow, key=event.notification_id, to=event.email, subject=subject, text=mail_text(event))


def notification_json(row: Any) -> dict[str, Any]:
    """The spec's notification shape."""
    return {"id": row["id"], "kind": row["kind"], "title": row["title"], "link": row["link"],
            "createdAt": iso(row["created_at"]), "seen": bool(row["seen"])}


@service.route("GET", "/users/{user_id}/notifications")
async def of_user(user_id: str, request: Request, uow: UnitOfWork) -> Any:
    """A user's notifications, newest first (``?unseen=true``: only unseen ones)."""
    query = select(notifications).where(notifications.c.user_id == user_id)
    if request.query_params.get("unseen") == "true":
        query = query.where(notifications.c.seen.is_(False))
    rows = await uow.fetch_all(query.order_by(notifications.c.created_at.desc(), notifications.c.id))
    return [notification_json(row) for row in rows]


@service.route("POST", "/users/{user_id}/notifications/{notification_id}/seen")
async def mark_seen(user_id: str, notification_id: str, uow: UnitOfWork) -> Response:
    """Mark one seen (404 when it is not this user's)."""
    found = await uow.fetch_one(select(notifications.c.id).where(and_(
        notifications.c.id == notification_id, notifications.c.user_id == user_id)))
    if found is None:
        raise NotFound("notification not found")
    uow.execute(update(notifications).where(notifications.c.id == notification_id).values(seen=True))
    return Response(status_code=204)
