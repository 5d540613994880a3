"""notify-runner: turns "a webinar starts in an hour" and "an article was published" into one queue message
per recipient (``NotificationQueued``, each its own stream and key), so that one failing address holds
back nobody else. A reminder's message carries the webinar's start as its deadline (``expiresAt``): the
queue (RabbitMQ's per-message TTL distributed, ``junction.queues`` embedded) drops it there.
"""

from __future__ import annotations

from urllib.parse import quote

from academy.contracts.events import ArticlePublished, NotificationQueued, ReminderDue
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("notify-runner", worker=26)


@service.on("scheduler", ReminderDue)
async def reminders(event: ReminderDue, uow: UnitOfWork) -> None:
    """One reminder per approved subscriber of the webinar or of its category."""
    recipients = await uow.call("content").get(f"/webinars/{quote(event.webinar_id)}/recipients")
    for user in recipients:
        notification_id = f"reminder-{event.webinar_id}-{user['id']}"
        uow.append(f"notification-{notification_id}", NotificationQueued(
            notification_id=notification_id, user_id=user["id"], email=user["email"], full_name=user["fullName"],
            kind="reminder", title=f"{event.title} starts in one hour", link=f"/webinars/{event.webinar_id}",
            expires_at=event.expires_at))


@service.on("content", ArticlePublished)
async def new_article(event: ArticlePublished, uow: UnitOfWork) -> None:
    """One notice per approved subscriber of the article's category."""
    recipients = await uow.call("content").get(f"/categories/{quote(event.category)}/recipients")
    for user in recipients:
        notification_id = f"article-{event.article_id}-{user['id']}"
        uow.append(f"notification-{notification_id}", NotificationQueued(
            notification_id=notification_id, user_id=user["id"], email=user["email"], full_name=user["fullName"],
            kind="new-article", title=f"New article: {event.title}", link=f"/articles/{event.article_id}"))
