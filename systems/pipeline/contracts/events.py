"""pipeline events. Names carry the system's prefix: the event registry is shared by every system of a process."""

from __future__ import annotations

from junction.codecs import JsonCodec
from junction.events import Event

USER_EVENTS = "user-events"  # the topic of the spec's user.created records


class UserCreated(Event):
    """A user was stored (with this event, in one transaction): welcome them, count them."""

    event_name = "pipeline.UserCreated"
    user_id: int
    email: str


# The spec's record value, member for member: {"event":"user.created","user_id":<id>,"email":"<email>"}.
USER_CREATED_JSON = JsonCodec(fields={"user_id": "userId", "email": "email"}, constants={"event": "user.created"})


def user_stream(user_id: int) -> str:
    """The stream (and so the Kafka key) of a user's events: ``user-<id>``."""
    return f"user-{user_id}"


class ReadingsAccepted(Event):
    """A batch of readings was stored (table ``batches``), to be folded into the per-minute aggregates."""

    event_name = "pipeline.ReadingsAccepted"
    batch_id: str
    count: int


class MinuteAggregated(Event):
    """The aggregate of one metric over one minute, as it stands after a batch touched it."""

    event_name = "pipeline.MinuteAggregated"
    metric: str
    minute: int  # Unix seconds of the minute's start (UTC)
    count: int
    sum: float
    min: float
    max: float
    mean: float
    p95: float
