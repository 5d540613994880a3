"""academy events: what services tell each other through their logs (the outbox).

Event names are global to a process that loads every system, so each carries the ``academy.`` prefix.
"""

from __future__ import annotations

from typing import ClassVar

from junction.events import Event


class AcademyEvent(Event):
    """Base of the academy's events: registered as ``academy.<ClassName>``."""

    event_name: ClassVar[str] = "academy.AcademyEvent"

    def __init_subclass__(cls, **kwargs: object) -> None:
        if "event_name" not in cls.__dict__:
            cls.event_name = f"academy.{cls.__name__}"
        super().__init_subclass__(**kwargs)


class UserRegistered(AcademyEvent):
    """content stored a registration with its proof document."""

    user_id: str
    email: str
    full_name: str


class UserReviewed(AcademyEvent):
    """An admin approved or rejected a user's proof (``status``: APPROVED or REJECTED)."""

    user_id: str
    status: str


class ArticlePublished(AcademyEvent):
    """An admin published an article: subscribers of its category are to be told."""

    article_id: str
    title: str
    category: str


class CommentPosted(AcademyEvent):
    """A user commented on an article (statistics counts activity)."""

    comment_id: str
    article_id: str
    user_id: str


class WebinarScheduled(AcademyEvent):
    """An admin scheduled a webinar: scheduler sets its reminder, go-live and end timers."""

    webinar_id: str
    title: str
    category: str
    starts_at: str  # ISO 8601, UTC
    duration_minutes: int
    points: int


class WebinarStatusChanged(AcademyEvent):
    """A webinar went LIVE, back to SCHEDULED (a compensated go-live) or ENDED."""

    webinar_id: str
    status: str
    reason: str | None = None


class PointsGranted(AcademyEvent):
    """The agency granted a webinar's points; ``grants`` holds the users who earned them (80 % rule)."""

    webinar_id: str
    points: int
    viewers: int
    granted_to: list[str]


class ReminderDue(AcademyEvent):
    """scheduler: a webinar starts in an hour, its subscribers are to be reminded (before ``expires_at``)."""

    webinar_id: str
    title: str
    category: str
    starts_at: str
    expires_at: str


class GoLiveStep(AcademyEvent):
    """One step of the go-live saga of a webinar, recorded so another instance can continue it."""

    webinar_id: str
    step: str  # started | marked-live | room-opened | compensated | completed | ended
    attempt: int
    error: str | None = None


class NotificationQueued(AcademyEvent):
    """notify-runner: one message per recipient; ``expires_at`` (when set) is its deadline (queue TTL)."""

    notification_id: str
    user_id: str
    email: str
    full_name: str
    kind: str  # reminder | new-article
    title: str
    link: str
    expires_at: str | None = None


class RoomOpened(AcademyEvent):
    """live opened the room of a webinar that went LIVE."""

    webinar_id: str


class ViewerWatched(AcademyEvent):
    """live: how long one viewer watched a webinar while it was LIVE (reported when it ended)."""

    webinar_id: str
    user_id: str
    seconds: int


class RoomClosed(AcademyEvent):
    """live closed the room of an ended webinar; ``viewers`` maps each viewer to seconds watched."""

    webinar_id: str
    viewers: dict[str, int]
