"""statistics: user activity for analysts, in a database of its own (its service store: a separate SQLite
file embedded, a separate PostgreSQL database distributed). It hears registrations and comments from
content and each viewer's watch time from live; nothing else reads or writes its tables.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sqlalchemy import Column, Integer, String, and_, func, select

from academy.contracts.events import CommentPosted, UserRegistered, ViewerWatched
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("statistics", worker=25)

daily = service.table(  # one row per day and kind of activity
    "daily_activity",
    Column("day", String, primary_key=True),
    Column("kind", String, primary_key=True),  # registrations | comments | watchedSeconds | viewers
    Column("amount", Integer, nullable=False),
)
viewing = service.table(
    "viewing",
    Column("webinar_id", String, primary_key=True),
    Column("user_id", String, primary_key=True),
    Column("seconds", Integer, nullable=False),
)
KINDS = ("registrations", "comments", "watchedSeconds", "viewers")


def _count(uow: UnitOfWork, kind: str, amount: int) -> None:
    day = uow.event_time().astimezone(UTC).date().isoformat()
    uow.upsert(daily, {"day": day, "kind": kind, "amount": amount}, keys=["day", "kind"],
               update={"amount": daily.c.amount + amount})


@service.on("content", UserRegistered, CommentPosted)
async def content_activity(event: UserRegistered | CommentPosted, uow: UnitOfWork) -> None:
    """Count registrations and comments per day."""
    _count(uow, "registrations" if isinstance(event, UserRegistered) else "comments", 1)


@service.on("live", ViewerWatched)
async def watched(event: ViewerWatched, uow: UnitOfWork) -> None:
    """Keep a viewer's time of one webinar, and count it for the day."""
    uow.upsert(viewing, {"webinar_id": event.webinar_id, "user_id": event.user_id, "seconds": event.seconds},
               keys=["webinar_id", "user_id"], update={"seconds": event.seconds})
    _count(uow, "watchedSeconds", event.seconds)
    _count(uow, "viewers", 1)


@service.route("GET", "/users/{user_id}")
async def user_statistics(user_id: str, uow: UnitOfWork) -> Any:
    """``{watchedMinutes, webinarsAttended}`` of one user."""
    row = await uow.fetch_one(select(func.coalesce(func.sum(viewing.c.seconds), 0).label("seconds"),
                                     func.count().label("webinars"))
                              .where(and_(viewing.c.user_id == user_id, viewing.c.seconds > 0)))
    seconds = int(row["seconds"]) if row else 0
    return {"watchedMinutes": round(seconds / 60), "webinarsAttended": int(row["webinars"]) if row else 0}


@service.route("GET", "/activity")
async def activity(uow: UnitOfWork) -> Any:
    """Per day: registrations, comments, viewers and watched minutes; oldest day first."""
    days: dict[str, dict[str, int]] = {}
    for row in await uow.fetch_all(select(daily).order_by(daily.c.day)):
        days.setdefault(row["day"], dict.fromkeys(KINDS, 0))[row["kind"]] = int(row["amount"])
    return {"days": [{"date": day, "registrations": v["registrations"], "comments": v["comments"],
                      "viewers": v["viewers"], "watchedMinutes": round(v["watchedSeconds"] / 60)}
                     for day, v in days.items()],
            "generatedAt": uow.now().isoformat()}
