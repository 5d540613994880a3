"""What every outbox relay does, whatever the broker: read the log after a checkpoint, publish, save.

The log is the outbox. One relay per service publishes it (replicas take turns by the store's lease). A
relay keeps its progress as a checkpoint in the service's own store (the same mechanism as consumer
checkpoints) and saves it only after the broker acknowledged a whole batch: a crash in between
publishes the batch again, and the consumers' inbox turns the duplicates into no-ops. When the broker
or the store fails, the relay drops its connection, backs off and resumes from the checkpoint. A
broker adapter supplies ``publish`` (return once the broker has the batch) and ``close``.
"""

from __future__ import annotations

import abc
import asyncio

import structlog

from junction.events import Envelope
from junction.signal import Signal
from junction.store import Batch, Lease, Store

log = structlog.get_logger()


class OutboxRelay(abc.ABC):
    """Publishes one service's committed log, in order, to a broker; ``checkpoint`` names its progress."""

    checkpoint = "relay"

    def __init__(self, store: Store, batch_size: int = 500, poll_interval: float = 0.25,
                 max_backoff: float = 2.0) -> None:
        self.store = store
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.position = 0  # the last log position the broker acknowledged (and the checkpoint holds)
        self.published = 0
        self.progressed = Signal()
        self.leased = False  # this relay holds the service's relay lease (it is the one publishing)
        self.standing_by = False  # another replica of the service holds the relay lease
        self.standby_interval = 2.0  # seconds between tries of a standing-by relay (real time: infrastructure)

    @abc.abstractmethod
    async def publish(self, envelopes: list[Envelope]) -> None:
        """Hand ``envelopes`` to the broker in order; return once it acknowledged all of them (raise otherwise)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Drop the broker connection (what was not acknowledged is published again next time)."""

    async def run(self) -> None:
        """Relay until cancelled, surviving broker outages. One relay per service publishes: replicas of a
        service (several pods, say) take the store's lease ``relay:<checkpoint>`` and the others stand by,
        taking over from the checkpoint when the holder stops or dies."""
        try:
            while True:
                lease = await self._lease()
                self.leased = True
                try:
                    await self._relay(lease)
                finally:
                    self.leased = False
                    await lease.release()
        finally:
            await self.close()

    async def _lease(self) -> Lease:
        """The relay lease of this service's store, waited for while another replica holds it."""
        while True:
            try:
                lease = await self.store.try_lease(f"relay:{self.checkpoint}")
            except Exception as error:  # the store is away: as for any other failure, try again shortly
                log.warning("relay lease not taken", service=self.store.service, error=repr(error))
                lease = None
            if lease is not None:
                self.standing_by = False
                return lease
            self.standing_by = True
            await asyncio.sleep(self.standby_interval)

    async def _relay(self, lease: Lease) -> None:
        """Publish while the lease is held."""
        backoff = 0.05
        while lease.held():
            try:
                while lease.held():
                    if not await self.publish_once():
                        await self.store.wait_for_append(self.poll_interval)
                    backoff = 0.05
            except Exception as error:  # the broker or the store failed: back off, resume from the checkpoint
                log.warning("relay interrupted", service=self.store.service, relay=self.checkpoint,
                            error=repr(error), retry_in=backoff)
                await self.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        log.warning("relay lease lost: standing by", service=self.store.service, relay=self.checkpoint)
        await self.close()

    async def publish_once(self) -> int:
        """Publish the next batch after the checkpoint and save it once acknowledged; how many were sent."""
        self.position = await self.store.checkpoint(self.checkpoint)
        envelopes = await self.store.read_log(self.position, self.batch_size)
        if not envelopes:
            return 0
        await self.publish(envelopes)
        await self.save(envelopes[-1].position)
        self.published += len(envelopes)
        self.progressed.notify()
        return len(envelopes)

    async def save(self, position: int) -> None:
        """Record that everything up to ``position`` is on the broker."""
        await self.store.commit(Batch(checkpoint=(self.checkpoint, position)))
        self.position = position

    async def lag(self) -> int:
        """Committed events the broker has not acknowledged yet."""
        return max(0, await self.store.head() - await self.store.checkpoint(self.checkpoint))

    async def idle(self) -> bool:
        """True when everything committed is on the broker (for ``Runtime.settle``)."""
        return await self.lag() == 0
