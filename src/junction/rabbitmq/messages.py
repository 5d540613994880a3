"""An envelope as a RabbitMQ message, and the deadline that gives a message its time to live.

The body is the envelope's JSON (as on Kafka), the routing key its event type, and the message is
persistent. An event with an ``expires_at`` field (``expiresAt`` in its JSON) is a message with a
deadline on the platform clock, for example "a reminder is worthless once the webinar started": the
relay turns what is left of it into the message's per-message TTL (in wall time, so a time-scaled
clock's TTL is shorter), the broker dead-letters the message when it expires in the queue, and a
consumer rejects (dead-letters) one that reaches it late by the platform clock anyway. So an expired
message is never handled, and an operator still sees it in the dead-letter queue.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aio_pika import DeliveryMode, Message

from junction.clock import Clock
from junction.events import Envelope, dumps

DEADLINE_FIELD = "expiresAt"


def deadline(envelope: Envelope) -> datetime | None:
    """When the message stops being worth delivering (None: never), from the event's ``expiresAt``."""
    value = envelope.data.get(DEADLINE_FIELD)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def expired(envelope: Envelope, clock: Clock) -> bool:
    """True when the envelope's deadline has passed on the platform clock."""
    when = deadline(envelope)
    return when is not None and when <= clock.now()


def time_to_live(envelope: Envelope, clock: Clock) -> float | None:
    """Wall-clock seconds the message may wait in a queue (None: no limit; 0 when already expired)."""
    when = deadline(envelope)
    if when is None:
        return None
    remaining = (when - clock.now()).total_seconds() / getattr(clock, "scale", 1.0)
    return max(0.0, remaining)


def encode(envelope: Envelope, clock: Clock) -> Message:
    """The persistent message carrying ``envelope`` (its id doubles as the message id)."""
    return Message(dumps(envelope.to_json()).encode(), content_type="application/json",
                   delivery_mode=DeliveryMode.PERSISTENT, message_id=envelope.id, type=envelope.type,
                   timestamp=envelope.occurred_at, expiration=time_to_live(envelope, clock),
                   headers={"key": envelope.key, "stream": envelope.stream})


def decode(body: bytes) -> Envelope:
    """The envelope a message carries (``position`` is the event's place in its source log)."""
    return Envelope.from_json(json.loads(body))
