"""scheduler: the webinar's clock. For every scheduled webinar it arms three durable timers on the platform
clock: the reminder at ``startsAt - 60 min``, the go-live saga at ``startsAt`` and the end at
``startsAt + duration``.

The go-live saga is orchestrated here: 1. content marks the webinar LIVE, 2. live opens its room. When the
room cannot be opened, the compensation puts the webinar back to SCHEDULED with the failure recorded, and
the saga is tried again ``RETRY_AFTER`` later (until the webinar's end). Each step is an event in the
scheduler's log (``GoLiveStep``, stream ``golive-<webinar>``), appended with the timer's deletion, so
another instance sees how far a saga got; every step is idempotent, so a timer fired twice is harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from academy.contracts.events import GoLiveStep, ReminderDue, WebinarScheduled
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

log = structlog.get_logger()
service = Service("scheduler", worker=23)

REMINDER_BEFORE = timedelta(minutes=60)
RETRY_AFTER = timedelta(seconds=30)


@service.on("content", WebinarScheduled)
async def arm(event: WebinarScheduled, uow: UnitOfWork) -> None:
    """Arm the reminder, the go-live and the end of a new webinar (a reminder already due fires now)."""
    starts = datetime.fromisoformat(event.starts_at)
    ends = starts + timedelta(minutes=event.duration_minutes)
    payload = event.payload()
    if starts > uow.now():
        uow.schedule(max(starts - REMINDER_BEFORE, uow.now()), "remind", payload, timer_id=f"remind-{event.webinar_id}")
    uow.schedule(starts, "go-live", {**payload, "attempt": 1}, timer_id=f"golive-{event.webinar_id}-1")
    uow.schedule(ends, "end", payload, timer_id=f"end-{event.webinar_id}")


@service.timer("remind")
async def remind(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """Tell notify-runner to remind the webinar's subscribers; the reminder expires at the start."""
    event = WebinarScheduled.model_validate(payload)
    if datetime.fromisoformat(event.starts_at) <= uow.now():
        return  # too late to remind anyone
    uow.append(f"webinar-{event.webinar_id}", ReminderDue(
        webinar_id=event.webinar_id, title=event.title, category=event.category, starts_at=event.starts_at,
        expires_at=event.starts_at))


def _step(uow: UnitOfWork, webinar_id: str, step: str, attempt: int, error: str | None = None) -> None:
    uow.append(f"golive-{webinar_id}", GoLiveStep(webinar_id=webinar_id, step=step, attempt=attempt, error=error))


@service.timer("go-live")
async def go_live(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """The go-live saga, one attempt: LIVE, then the room; compensated and retried when the room fails."""
    attempt = int(payload["attempt"])
    event = WebinarScheduled.model_validate({k: v for k, v in payload.items() if k != "attempt"})
    webinar_id = event.webinar_id
    ends = datetime.fromisoformat(event.starts_at) + timedelta(minutes=event.duration_minutes)
    if uow.now() >= ends:
        return  # the end came first: nothing to open any more
    content = uow.call("content")
    _step(uow, webinar_id, "started", attempt)
    try:
        await content.post(f"/webinars/{webinar_id}/status", {"status": "LIVE", "expected": "SCHEDULED"})
    except UpstreamError as error:
        if error.status in (404, 409):  # deleted or already ended: the saga has nothing to do
            _step(uow, webinar_id, "abandoned", attempt, error.message)
            return
        raise  # content unreachable: the timer fires again (with backoff) and the step is repeated
    _step(uow, webinar_id, "marked-live", attempt)
    try:
        await uow.call("live").post(f"/rooms/{webinar_id}/open", {"endsAt": ends.isoformat()})
    except Exception as error:  # any failure to open the room is compensated
        reason = f"room could not be opened: {getattr(error, 'message', None) or error!r}"
        log.warning("go-live compensated", webinar=webinar_id, attempt=attempt, reason=reason)
        await content.post(f"/webinars/{webinar_id}/status",
                           {"status": "SCHEDULED", "expected": "LIVE", "reason": reason})
        _step(uow, webinar_id, "compensated", attempt, reason)
        uow.schedule(uow.now() + RETRY_AFTER, "go-live", {**payload, "attempt": attempt + 1},
                     timer_id=f"golive-{webinar_id}-{attempt + 1}")
        return
    _step(uow, webinar_id, "completed", attempt)


@service.timer("end")
async def end(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """The end: the webinar is ENDED and its room closes (live reports watch time)."""
    webinar_id = str(payload["webinarId"])
    content = uow.call("content")
    for expected in ("LIVE", "SCHEDULED"):  # a webinar whose room never opened ends too
        try:
            await content.post(f"/webinars/{webinar_id}/status", {"status": "ENDED", "expected": expected})
            break
        except UpstreamError as error:
            if error.status != 409:
                raise
    await uow.call("live").post(f"/rooms/{webinar_id}/close")
    _step(uow, webinar_id, "ended", 0)
