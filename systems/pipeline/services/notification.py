"""notification: a welcome e-mail for every new user, exactly once, and the list of what it sent.

The mail is queued in the same transaction as the handled event's inbox row (``junction.mail``), keyed
by the user id, with a row of ``notifications``; a background sender delivers it over SMTP. A user
created while the mail server (or, distributed, Kafka) is down is welcomed once it is back, never twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, String, select
from starlette.requests import Request

from junction.mail import Mailer
from junction.service import Service
from junction.uow import UnitOfWork
from pipeline import health
from pipeline.contracts.events import UserCreated

service = Service("notification", worker=3)
health.declare(service)
mailer = Mailer(service, mail_from="Pipeline <welcome@pipeline.example.com>")

WELCOME = "welcome"
LISTED = 1000  # notifications per answer at most
BATCH = 100  # events per transaction: the handler only writes (a burst of sign-ups is one commit per 100)

notifications = service.table(
    "notifications",
    Column("id", String, primary_key=True),  # the mail's key: one welcome per user
    Column("user_id", BigInteger, nullable=False),
    Column("email", String, nullable=False, index=True),
    Column("kind", String, nullable=False),
    Column("queued_at", Float, nullable=False),  # platform time, Unix seconds
)


def welcome_text(email: str) -> str:
    """The welcome mail's body."""
    return (f"Hello,\n\nyour pipeline account for {email} is ready.\n\n"
            "Send readings to POST /ingest and watch them on the dashboard.\n\nThe pipeline team\n")


@service.on("user", UserCreated, batch=BATCH)
async def welcome(event: UserCreated, uow: UnitOfWork) -> None:
    """Queue the welcome mail (a redelivered event queues nothing: the key is the user id)."""
    key = f"{WELCOME}-{event.user_id}"
    mailer.send(uow, key=key, to=event.email, subject="Welcome to the pipeline", text=welcome_text(event.email))
    uow.upsert(notifications, {"id": key, "user_id": event.user_id, "email": event.email, "kind": WELCOME,
                               "queued_at": uow.now().timestamp()}, keys=["id"])


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@service.route("GET", "/notifications")
async def sent(request: Request, uow: UnitOfWork) -> list[dict[str, Any]]:
    """``[{"id", "userId", "email", "kind", "sentAt", "status"}]`` of one address (or all), oldest first.

    ``sentAt`` is when the mail server accepted the mail, null while it is pending."""
    outbox = mailer.table
    query = (select(notifications, outbox.c.sent_at).join(outbox, outbox.c.key == notifications.c.id, isouter=True)
             .order_by(notifications.c.queued_at, notifications.c.id).limit(LISTED))
    if email := request.query_params.get("email"):
        query = query.where(notifications.c.email == email)
    rows = await uow.fetch_all(query)
    return [{"id": r["id"], "userId": r["user_id"], "email": r["email"], "kind": r["kind"],
             "sentAt": _iso(r["sent_at"]), "status": "sent" if r["sent_at"] is not None else "pending"}
            for r in rows]
