"""Topics' end offsets on a connection of their own, shared by a process's Kafka sources.

A broker answers the requests of one connection in order, and a consumer's connection is mostly
held by its long-poll fetch (up to ``fetch_max_wait_ms``): asking the consumer itself for end
offsets waits behind that fetch, about half a second on an idle topic. ``Runtime.settle`` asks every
source for its lag many times per step of the virtual clock, so the sources share one client that
does nothing else and answers in a round trip.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition

from junction.kafka.bounded import bounded


class ProbeClosed(Exception):
    """The end-offsets client was asked after its last user left."""


class EndOffsets:
    """A group-less client that reads end offsets; started on first use, stopped when its last user leaves."""

    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._client: AIOKafkaConsumer | None = None
        self._users = 0
        self._lock = asyncio.Lock()

    def acquire(self) -> None:
        """One more source uses the probe."""
        self._users += 1

    async def release(self) -> None:
        """A source is done with the probe; the last one stops the client."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            async with self._lock:  # after a start in flight, or its client would outlive every user
                await self.close()

    async def of(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offset (the offset the next record will get) of each partition; ``ProbeClosed``
        once no source holds the probe (a lag asked while its source was closing)."""
        async with self._lock:
            if self._users == 0:
                raise ProbeClosed("no source holds the end-offsets client")
            client = self._client or await self._start()
        try:
            return await bounded(client.end_offsets(partitions), self.timeout)
        except BaseException:
            await self.close()  # a fresh connection next time, e.g. after the broker restarted
            raise

    async def close(self) -> None:
        """Stop the client (a later ``of`` starts another)."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await bounded(client.stop(), self.timeout)

    async def _start(self) -> AIOKafkaConsumer:
        client = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id="junction-end-offsets",
                                  enable_auto_commit=False, request_timeout_ms=int(self.timeout * 1000))
        try:
            await bounded(client.start(), self.timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                await bounded(client.stop(), self.timeout)
            raise
        self._client = client
        return client
