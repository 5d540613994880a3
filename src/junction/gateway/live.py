"""The live feed: services' committed events, pushed to the gateway's subscribers as they happen.

One task per followed service reads its events from the moment it starts (``Runtime.follower``:
the service's log in the embedded topology, its Kafka topic in the distributed one, so a gateway
never opens another service's database) and hands every event to a ``Broadcast``, which copies it
into each subscriber's bounded queue. However many subscribers there are, each service is followed
once: there is no polling loop per subscriber.

A subscriber that does not keep up loses its oldest pending items rather than slowing the feed
(``Subscription.dropped`` counts them): live views are refreshed by the next event anyway.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Coroutine
from typing import Any, Generic, TypeVar

from junction.events import Envelope
from junction.sources import Follower

T = TypeVar("T")

Spawn = Callable[[str, Coroutine[Any, Any, None]], None]


class Subscription(Generic[T]):
    """An async iterator over a broadcast's items, registered from the moment it is created."""

    def __init__(self, broadcasts: Collection[Broadcast[T]], accept: Callable[[T], bool] | None = None,
                 max_pending: int = 1000) -> None:
        self._broadcasts = list(broadcasts)
        self._accept = accept
        self._items: deque[T] = deque(maxlen=max_pending)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        for broadcast in self._broadcasts:
            broadcast._subscribers.add(self)

    def _offer(self, item: T) -> None:
        if self._accept is not None and not self._accept(item):
            return
        if len(self._items) == self._items.maxlen:
            self.dropped += 1
        self._items.append(item)
        self._ready.set()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    async def aclose(self) -> None:
        """Stop receiving; a pending ``__anext__`` ends the iteration."""
        self._closed = True
        self._ready.set()
        for broadcast in self._broadcasts:
            broadcast._subscribers.discard(self)

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Broadcast(Generic[T]):
    """Fan-out: every published item goes to every current subscriber."""

    def __init__(self, max_pending: int = 1000) -> None:
        self.max_pending = max_pending
        self._subscribers: set[Subscription[T]] = set()

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def publish(self, item: T) -> None:
        """Offer ``item`` to every subscriber (never blocks)."""
        for subscriber in list(self._subscribers):
            subscriber._offer(item)

    def subscribe(self, accept: Callable[[T], bool] | None = None) -> Subscription[T]:
        """A new subscription, receiving the items published from now on that ``accept`` takes."""
        return Subscription([self], accept, self.max_pending)


class LiveFeed:
    """Follows named services from now on and broadcasts their new events."""

    def __init__(self, follow: Callable[[str], Awaitable[Follower]], spawn: Spawn, wait: float = 0.5) -> None:
        self._follow = follow
        self._spawn = spawn
        self.wait = wait  # bound on the latency when a commit's wake-up is missed (another process)
        self._feeds: dict[str, Broadcast[Envelope]] = {}
        self._starting: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self, *services: str, types: Collection[str] | None = None,
                        where: Callable[[Envelope], bool] | None = None) -> Subscription[Envelope]:
        """Events committed from now on by ``services``, merged in one stream.

        ``types`` and ``where`` filter at publication, so a subscriber's queue only holds what it wants.
        """
        wanted = frozenset(types) if types is not None else None

        def accept(envelope: Envelope) -> bool:
            return (wanted is None or envelope.type in wanted) and (where is None or where(envelope))

        # Registered before the tails start: whatever a tail reads after its start position reaches us.
        subscription = Subscription([self._feeds.setdefault(s, Broadcast()) for s in services], accept)
        try:
            for service in services:
                await self._ensure_tailing(service)
        except BaseException:
            await subscription.aclose()
            raise
        return subscription

    def subscribers(self, service: str) -> int:
        """Open subscriptions on one service's events."""
        feed = self._feeds.get(service)
        return feed.subscribers if feed else 0

    async def _ensure_tailing(self, service: str) -> None:
        """Start the tail of ``service`` once; wait until it knows its start position."""
        if service not in self._starting:
            started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._starting[service] = started
            self._spawn(f"live/{service}", self._tail(service, started))
        await asyncio.shield(self._starting[service])

    async def _tail(self, service: str, started: asyncio.Future[None]) -> None:
        try:
            follower = await self._follow(service)
        except BaseException as error:
            started.set_exception(error)
            del self._starting[service]  # the next subscriber tries again
            raise
        started.set_result(None)
        feed = self._feeds[service]
        try:
            while True:
                for envelope in await follower.next(self.wait):
                    feed.publish(envelope)
        finally:
            await follower.close()
