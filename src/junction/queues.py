"""Queue subscriptions: one message per item, each with an optional deadline, on either topology.

A subscription declared with ``queued`` is a queue rather than a feed::

    @queued(notify_center, "notify-runner", NotificationQueued)     # instead of @service.on(...)
    async def deliver(event: NotificationQueued, uow: UnitOfWork) -> None: ...

Distributed (a system with ``brokers={"rabbitmq"}``), it consumes a durable RabbitMQ queue fed by the source
service's relay: persistent messages, publisher confirms, a per-message TTL from the event's ``expiresAt``
and dead-lettering (``junction.rabbitmq``). Embedded, the source's log is the queue, read through
``QueueSource``, which keeps the same promise: a message whose deadline has passed on the platform clock
when it reaches the consumer is dead-lettered (counted, logged, never handled) instead of delivered late;
it stays in the source's log, where an operator can still read it. Everything else (inbox, retries, parking
of a failing message while the others go on) is the subscription worker's, as for any subscription.

``QueueSources`` is the runtime's source factory that routes queue subscriptions so; ``start_queue_relays``
runs the RabbitMQ relays of the services that feed queues.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from junction.clock import Clock
from junction.events import Envelope, Event
from junction.service import Handler, Service, SubscriptionSpec
from junction.sources import LogSource, Source
from junction.store import Store

if TYPE_CHECKING:
    from junction.rabbitmq import RabbitConfig, RabbitRelay
    from junction.runtime import Runtime, ServiceRuntime, SourceFactory, System

log = structlog.get_logger()

QUEUE_GROUP = "queue"  # queue subscriptions are named ``queue:<source>``
DEAD_LETTER = "junction.DeadLetter"  # the type an expired message is handed to the worker as (no handler has it)
DEADLINE_FIELD = "expiresAt"  # the same field the RabbitMQ relay turns into a per-message TTL


def queued(service: Service, source: str, *events: type[Event]) -> Callable[[Handler], Handler]:
    """Declare a queue subscription of ``service`` to ``events`` from ``source`` (see the module's docstring)."""
    return service.on(source, *events, group=QUEUE_GROUP)


def is_queued(spec: SubscriptionSpec) -> bool:
    """True for a subscription declared with ``queued``."""
    return spec.name.startswith(f"{QUEUE_GROUP}:")


def expired(envelope: Envelope, clock: Clock) -> bool:
    """True when the message's ``expiresAt`` has passed on ``clock`` (False without a deadline)."""
    from junction.rabbitmq.messages import expired as past_deadline

    return past_deadline(envelope, clock)


class LazyLogSource(LogSource):
    """A log source whose log store is found when it opens (the runtime opens other services' stores then)."""

    def __init__(self, log_of: Callable[[], Awaitable[Store]], checkpoints: Store, subscription: str) -> None:
        super().__init__(checkpoints, checkpoints, subscription)  # the real log replaces the first on open
        self._log_of = log_of

    async def open(self) -> None:
        self.log = await self._log_of()
        await super().open()


class QueueSource(LazyLogSource):
    """The embedded queue: the source's log, with messages past their deadline dead-lettered, never handled."""

    via = "queue"

    def __init__(self, log_of: Callable[[], Awaitable[Store]], checkpoints: Store, subscription: str,
                 clock: Clock) -> None:
        super().__init__(log_of, checkpoints, subscription)
        self.clock = clock
        self.dead_lettered: int = 0

    async def fetch(self, limit: int) -> list[Envelope]:
        """The next messages; an expired one comes as a dead letter, which the worker acknowledges in its
        place without handling it (so the checkpoint still moves in order)."""
        return [self._checked(envelope) for envelope in await super().fetch(limit)]

    def _checked(self, envelope: Envelope) -> Envelope:
        if envelope.type == DEAD_LETTER or not expired(envelope, self.clock):
            return envelope
        self.dead_lettered += 1
        log.info("expired message dead-lettered", subscription=self.subscription, event_id=envelope.id,
                 event_type=envelope.type)
        return dataclasses.replace(envelope, type=DEAD_LETTER)


class QueueSources:
    """A ``Runtime`` source factory: queue subscriptions on RabbitMQ when ``rabbit`` is given, else on the
    embedded queue; other subscriptions from ``inner`` (e.g. Kafka) or, without it, the source's log.
    ``bind`` it to the runtime it serves (the embedded queue opens other services' logs through it)."""

    def __init__(self, inner: SourceFactory | None = None, rabbit: RabbitConfig | None = None) -> None:
        self.inner = inner
        self.rabbit = rabbit
        self.runtime: Runtime | None = None

    def bind(self, runtime: Runtime) -> Runtime:
        """Serve ``runtime``; returns it."""
        self.runtime = runtime
        return runtime

    def _log_of(self, name: str) -> Callable[[], Awaitable[Store]]:
        async def log_of() -> Store:
            if self.runtime is None:
                raise RuntimeError("QueueSources is not bound to a runtime")
            return await self.runtime.source(name)

        return log_of

    def __call__(self, service: ServiceRuntime, spec: SubscriptionSpec) -> Source:
        if is_queued(spec):
            if self.rabbit is not None:
                from junction.rabbitmq import RabbitSource, Subscriber

                return RabbitSource(self.rabbit, Subscriber.of(service.spec.name, spec), service.clock)
            return QueueSource(self._log_of(spec.source), service.store, spec.name, service.clock)
        if self.inner is not None:
            return self.inner(service, spec)
        return LazyLogSource(self._log_of(spec.source), service.store, spec.name)


def has_queues(system: System) -> bool:
    """True when a service of ``system`` declares a queue subscription."""
    return any(is_queued(spec) for service in system.services for spec in service.subscriptions.values())


def start_queue_relays(runtime: Runtime, rabbit: RabbitConfig) -> list[RabbitRelay]:
    """Relay to RabbitMQ the log of every hosted service that feeds a queue subscription (only those queues
    are declared); ``settle`` waits for them too."""
    from junction.rabbitmq import RabbitRelay, Subscriber

    relays = []
    for name, service in runtime.services.items():
        subscribers = [Subscriber.of(s.name, spec) for s in runtime.system.services
                       for spec in s.subscriptions.values() if is_queued(spec) and spec.source == name]
        if not subscribers:
            continue
        relay = RabbitRelay(service.store, rabbit, subscribers, runtime.clock, poll_interval=runtime.poll_interval)
        runtime.spawn(f"{name}/relay:rabbitmq", relay.run())
        runtime.quiet_checks.append(relay.idle)
        relays.append(relay)
    return relays


__all__ = ["DEAD_LETTER", "QUEUE_GROUP", "LazyLogSource", "QueueSource", "QueueSources", "expired", "has_queues",
           "is_queued", "queued", "start_queue_relays"]
