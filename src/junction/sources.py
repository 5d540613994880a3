"""Where a subscription's messages come from, and how far it got.

A ``Source`` delivers another service's events in order per key and remembers acknowledged
progress. The embedded runtime uses ``LogSource``: it reads the source service's log directly (the
database is the queue) and keeps the checkpoint in the consumer's own store. The distributed
runtime plugs in a broker source (Kafka consumer group offsets) behind the same port, so the
subscription worker (inbox, retries, parking) is the same code for both.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

from junction.events import Envelope
from junction.store import Batch, Store


class Source(abc.ABC):
    """The messages of one subscription."""

    position: int = 0  # how far acknowledged delivery got (a log position, or a message count)
    via: str = "log"  # what carries the messages, as `junction status` names it
    dead_lettered: int | None = None  # messages dead-lettered since the start, where the source counts them

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and resume after the last saved progress (the earliest message the first time)."""

    @abc.abstractmethod
    async def fetch(self, limit: int) -> list[Envelope]:
        """The next messages, without waiting ([] when there are none now)."""

    @abc.abstractmethod
    async def wait(self, timeout: float) -> None:
        """Return when new messages may be there, or after ``timeout`` seconds."""

    @abc.abstractmethod
    async def acknowledge(self, envelope: Envelope) -> None:
        """This message (and every earlier one) is dealt with; may be saved lazily."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Make the acknowledged progress durable."""

    @abc.abstractmethod
    async def lag(self) -> int:
        """How many messages are known but not yet delivered (0 when caught up)."""

    @abc.abstractmethod
    async def rewind(self) -> int:
        """Forget the progress so delivery starts again at the earliest message; the backlog size."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""


class LogSource(Source):
    """Another service's event log read directly, with the checkpoint kept in the consumer's store."""

    def __init__(self, log: Store, checkpoints: Store, subscription: str, checkpoint_every: int = 100) -> None:
        self.log = log
        self.checkpoints = checkpoints
        self.subscription = subscription
        self.checkpoint_every = checkpoint_every
        self.position = 0
        self._saved = 0

    async def open(self) -> None:
        self.position = self._saved = await self.checkpoints.checkpoint(self.subscription)

    async def fetch(self, limit: int) -> list[Envelope]:
        return await self.log.read_log(self.position, limit)

    async def wait(self, timeout: float) -> None:
        await self.log.wait_for_append(timeout)

    async def acknowledge(self, envelope: Envelope) -> None:
        self.position = envelope.position
        if self.position - self._saved >= self.checkpoint_every:
            await self.flush()

    async def flush(self) -> None:
        if self.position > self._saved:
            await self.checkpoints.commit(Batch(checkpoint=(self.subscription, self.position)))
            self._saved = self.position

    async def lag(self) -> int:
        return max(0, await self.log.head() - self.position)

    async def close(self) -> None:
        pass  # the stores belong to the runtime

    async def rewind(self) -> int:
        await self.checkpoints.reset_checkpoint(self.subscription)
        self.position = self._saved = 0
        return await self.log.head()


class Follower(abc.ABC):
    """Another service's events from now on, for live views (no checkpoint, no inbox: a viewer that
    misses events while away reloads its state, it is not a consumer)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Fix the start position: events committed after this call are delivered."""

    @abc.abstractmethod
    async def next(self, timeout: float) -> list[Envelope]:
        """The events committed since the last call, waiting up to ``timeout`` when there are none."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""


class LogFollower(Follower):
    """Follows a service's log directly (the embedded topology: the database is the feed)."""

    def __init__(self, log: Store) -> None:
        self.log = log
        self.position = 0

    async def start(self) -> None:
        self.position = await self.log.head()

    async def next(self, timeout: float) -> list[Envelope]:
        events = await self.log.read_log(self.position, 500)
        if not events:
            await self.log.wait_for_append(timeout)
            events = await self.log.read_log(self.position, 500)
        if events:
            self.position = events[-1].position
        return events

    async def close(self) -> None:
        pass  # the store belongs to the runtime


FollowerFactory = Callable[[str], Follower]  # a service's name -> a follower of its events (distributed)
