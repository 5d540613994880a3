"""Consumer groups over a source log: effectively-once handling, retries, and per-key parking.

A worker reads its source log from its checkpoint (from the earliest event the first time). Each
event's handler runs in a unit of work that also writes an inbox row, so a redelivered event is
skipped. Checkpoints are saved every ``checkpoint_every`` events and whenever the worker catches
up, so a crash between handling and checkpoint re-delivers, and the inbox makes that harmless.

A failing handler is retried with exponential backoff; when the attempts run out its message is
parked with the error, and later messages of the same key are parked behind it (their order is
kept) while other keys go on. ``junction dlq retry`` marks a key's parked messages for another
try, in order; ``junction dlq drop`` discards the failing head so the ones behind it can go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from junction.errors import ConcurrencyError
from junction.events import Envelope
from junction.service import Handler, SubscriptionSpec
from junction.signal import Signal
from junction.sources import Source
from junction.store import Batch, Store
from junction.uow import UnitOfWork

log = structlog.get_logger()
CONFLICT_RETRIES = 8
FETCH = 256  # events asked of the source at a time


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing handler is tried before its key is parked."""

    attempts: int = 4
    first_delay: float = 0.02
    max_delay: float = 1.0


class HandlerFailed(Exception):
    """A handler kept failing; carries the last error text."""


class SubscriptionWorker:
    """Runs one subscription of one service."""

    def __init__(self, spec: SubscriptionSpec, store: Store, source: Source,
                 make_uow: Callable[[Envelope], UnitOfWork], policy: RetryPolicy | None = None,
                 poll_interval: float = 0.25) -> None:
        self.spec = spec
        self.name = spec.name
        self.store = store  # the consumer's own store: inbox, parked messages, handler effects
        self.source = source
        self.make_uow = make_uow
        self.policy = policy or RetryPolicy()
        self.poll_interval = poll_interval
        self.caught_up = asyncio.Event()
        self.progressed = Signal()  # notified whenever the position moves
        self.handled = 0

    @property
    def position(self) -> int:
        """How far delivery got in the source."""
        return self.source.position

    async def run(self) -> None:
        """Consume until cancelled."""
        await self.source.open()
        while True:
            await self._retry_released()
            envelopes = await self.source.fetch(max(FETCH, self.spec.batch))
            if not envelopes:
                await self.source.flush()
                self.caught_up.set()
                await self.source.wait(self.poll_interval)
                continue
            self.caught_up.clear()
            parked_keys = {p.key for p in await self.store.parked(self.name)}
            for start in range(0, len(envelopes), self.spec.batch):
                chunk = envelopes[start:start + self.spec.batch]
                if len(chunk) == 1 or not await self._process_together(chunk, parked_keys):
                    for envelope in chunk:
                        await self._process(envelope, parked_keys)
                for envelope in chunk:
                    await self.source.acknowledge(envelope)
                self.progressed.notify()

    async def flush(self) -> None:
        """Save the source's progress."""
        await self.source.flush()

    async def _process(self, envelope: Envelope, parked_keys: set[str]) -> None:
        handler = self.spec.handlers.get(envelope.type)
        if handler is None:
            return
        if envelope.key in parked_keys:  # wait behind the parked message of this key
            await self.store.commit(Batch(park=[(self.name, envelope.key, envelope, None, 0)]))
            return
        if await self.store.in_inbox(self.name, envelope.id):
            return
        try:
            await self._deliver(envelope, handler)
        except HandlerFailed as failure:
            log.warning("parked", subscription=self.name, key=envelope.key, event_type=envelope.type,
                        error=str(failure))
            await self.store.commit(
                Batch(park=[(self.name, envelope.key, envelope, str(failure), self.policy.attempts)])
            )
            parked_keys.add(envelope.key)

    async def _process_together(self, envelopes: list[Envelope], parked_keys: set[str]) -> bool:
        """Handle a batch in one unit of work (``SubscriptionSpec.batch``); False when it must go one by one:
        a key of it is parked, or a handler or the commit failed (nothing of the batch was written then)."""
        wanted = [e for e in envelopes if e.type in self.spec.handlers]
        if any(e.key in parked_keys for e in wanted):
            return False
        done = await self.store.handled(self.name, [e.id for e in wanted])
        todo = [e for e in wanted if e.id not in done]
        if not todo:
            return True
        uow = self.make_uow(todo[0])
        try:
            for envelope in todo:
                uow.message = envelope  # each handler sees its own event (event_time, causation)
                await self.spec.handlers[envelope.type](envelope.event, uow)
                uow.batch.inbox.append((self.name, envelope.id))
            await uow.commit()
        except Exception as error:
            log.info("batch failed, handling its events one by one", subscription=self.name, error=repr(error))
            return False
        self.handled += len(todo)
        return True

    async def _deliver(self, envelope: Envelope, handler: Handler, unpark: int | None = None) -> None:
        """Handle once, with retries; HandlerFailed when the attempts run out."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=wait_exponential(multiplier=self.policy.first_delay, max=self.policy.max_delay),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._handle_once(envelope, handler, unpark)
        except Exception as error:
            raise HandlerFailed(f"{type(error).__name__}: {error}") from error

    async def _handle_once(self, envelope: Envelope, handler: Handler, unpark: int | None) -> None:
        """One delivery; a lost optimistic race is not a failure: run on fresh state again."""
        for _ in range(CONFLICT_RETRIES):
            uow = self.make_uow(envelope)
            await handler(envelope.event, uow)
            uow.batch.inbox.append((self.name, envelope.id))
            if unpark is not None:
                uow.batch.unpark.append(unpark)
            try:
                await uow.commit()
            except ConcurrencyError:
                if await self.store.in_inbox(self.name, envelope.id):
                    return  # handled meanwhile (a redelivery raced us): nothing more to do
                continue
            self.handled += 1
            return
        raise ConcurrencyError(f"{self.name}: {envelope.stream} kept changing under the handler")

    async def _retry_released(self) -> None:
        parked = await self.store.parked(self.name)
        released = list(dict.fromkeys(p.key for p in parked if p.retry_requested))
        for key in released:
            for message in [p for p in parked if p.key == key]:
                handler = self.spec.handlers.get(message.envelope.type)
                if handler is None or await self.store.in_inbox(self.name, message.envelope.id):
                    await self.store.commit(Batch(unpark=[message.id]))
                    continue
                try:
                    await self._deliver(message.envelope, handler, unpark=message.id)
                except HandlerFailed as failure:
                    await self.store.mark_parked_failed(message.id, str(failure), self.policy.attempts)
                    break  # the rest of this key keeps waiting behind it
