"""A subscription's messages from Kafka: a consumer group on the source service's topic.

The group (``<service>.<subscription>``) starts at the earliest offset when it has no committed
offset, never at the latest. Offsets are committed by hand: ``acknowledge`` records, per partition,
the offset after a message the worker has dealt with (its handler's transaction committed, or the
message parked), and ``flush`` commits them; so a crash re-delivers, and the consumer's inbox makes
that harmless. On a rebalance the revoked partitions' acknowledged offsets are committed first and
their undelivered records dropped; newly assigned partitions resume from their committed offsets.
``position`` counts acknowledged messages as the sum of the partitions' next offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from junction.events import Envelope
from junction.kafka.bounded import bounded
from junction.kafka.config import KafkaConfig, decode, ensure_topic
from junction.kafka.offsets import EndOffsets, ProbeClosed
from junction.sources import Source
from junction.store import Store

log = structlog.get_logger()
UNDECODABLE = "junction.Undecodable"  # no handler has this type: such records are logged and passed over


class KafkaSource(Source):
    """One subscription of ``service`` to ``source_service``'s topic, with offsets in its consumer group."""

    via = "kafka"

    def __init__(self, config: KafkaConfig, service: str, subscription: str, source_service: str,
                 checkpoints: Store, flush_every: int = 100, timeout: float = 10.0,
                 end_offsets: EndOffsets | None = None, *, topic: str | None = None,
                 decoder: Callable[[ConsumerRecord[bytes, bytes]], Envelope] | None = None) -> None:
        self.config = config
        self.subscription = subscription
        # the source service's topic, or the topic it exports the subscription's events to (``decoder`` reads them)
        self.topic = topic or config.topic(source_service)
        self.decoder = decoder
        self.group = config.group(service, subscription)
        self.checkpoints = checkpoints  # the consumer's store: its inbox and parked rows are reset by rewind
        self.flush_every = flush_every
        self.timeout = timeout  # bound on broker calls, so an outage never blocks the worker for long
        self.end_offsets = end_offsets or EndOffsets(config.bootstrap, timeout)  # for ``lag``; held while joined
        self.position = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._buffer: deque[tuple[TopicPartition, int, Envelope]] = deque()  # fetched, not yet delivered
        self._delivered: deque[tuple[TopicPartition, int, Envelope]] = deque()  # delivered, not acknowledged
        self._offsets: dict[TopicPartition, int] = {}  # next offset to resume from, per assigned partition
        self._dirty: set[TopicPartition] = set()  # acknowledged since the last commit
        self._since_commit = 0
        self._lag = 0

    # -- life cycle ----------------------------------------------------------------------------------
    async def open(self) -> None:
        """Join the group (waiting out a broker that is not there yet) and resume from the committed offsets."""
        backoff = 0.05
        while True:
            try:
                await self._join()
                return
            except (KafkaError, OSError, TimeoutError) as error:
                log.warning("kafka not reachable", group=self.group, error=repr(error), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _join(self) -> None:
        await ensure_topic(self.config, self.topic)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap, group_id=self.group, client_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", heartbeat_interval_ms=1000,
            request_timeout_ms=int(self.timeout * 1000) + 5000,
            # a member that neither polls nor rejoins is dropped within these, so no join waits 5 minutes
            max_poll_interval_ms=60_000, rebalance_timeout_ms=int(self.timeout * 2000),
        )
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        try:
            await consumer.start()  # returns once the group assigned this member its partitions
        except BaseException:
            with contextlib.suppress(Exception):
                await bounded(consumer.stop(), self.timeout)
            raise
        self._consumer = consumer
        self.end_offsets.acquire()
        with contextlib.suppress(KafkaError, TimeoutError):  # only for ``position``; ``lag`` seeds it again
            await bounded(self._seed(consumer.assignment()), self.timeout)

    @property
    def joined(self) -> bool:
        """True once ``open`` has joined the group (and until ``close``)."""
        return self._consumer is not None

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        self._buffer.clear()
        self._delivered.clear()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await bounded(consumer.stop(), self.timeout)  # leaves the group; commits nothing
            await self.end_offsets.release()

    # -- delivery ------------------------------------------------------------------------------------
    async def fetch(self, limit: int) -> list[Envelope]:
        if not self._buffer:
            await self._poll(0)
        batch: list[Envelope] = []
        while self._buffer and len(batch) < limit:
            item = self._buffer.popleft()
            self._delivered.append(item)
            batch.append(item[2])
        return batch

    async def wait(self, timeout: float) -> None:
        if not self._buffer:
            await self._poll(timeout)

    async def acknowledge(self, envelope: Envelope) -> None:
        assigned = self._consumer.assignment() if self._consumer else set()
        while self._delivered:  # the worker acknowledges in delivery order
            tp, offset, delivered = self._delivered.popleft()
            if tp in assigned:  # a revoked partition's records now belong to another member
                self._offsets[tp] = max(self._offsets.get(tp, 0), offset + 1)
                self._dirty.add(tp)
            if delivered is envelope:
                break
        self.position = sum(self._offsets.values())
        self._since_commit += 1
        if self._since_commit >= self.flush_every:
            await self.flush()

    async def flush(self) -> None:
        await self._commit(set(self._dirty))

    # -- progress ------------------------------------------------------------------------------------
    async def lag(self) -> int:
        consumer = self._consumer
        if consumer is None:
            return self._lag
        try:
            self._lag = await bounded(self._measure(consumer), self.timeout)
        except (KafkaError, TimeoutError, ProbeClosed) as error:  # broker away or source closing: not known
            log.debug("lag unknown", group=self.group, error=repr(error))
            self._lag = max(self._lag, 1)
        return self._lag

    async def rewind(self) -> int:
        """Commit the earliest offsets for the whole group (which must have no running member) and forget the inbox."""
        await self.close()
        partitions = await ensure_topic(self.config, self.topic)
        tps = [TopicPartition(self.topic, p) for p in range(partitions)]
        committer = AIOKafkaConsumer(bootstrap_servers=self.config.bootstrap, group_id=self.group,
                                     client_id=self.group, enable_auto_commit=False)
        await committer.start()
        try:
            committer.assign(tps)
            earliest = await committer.beginning_offsets(tps)
            ends = await committer.end_offsets(tps)
            await committer.commit(dict(earliest))
        except KafkaError as error:
            message = f"cannot rewind {self.group}: stop every member of the group first ({error!r})"
            raise RuntimeError(message) from error
        finally:
            await committer.stop()
        await self.checkpoints.reset_checkpoint(self.subscription)
        self._offsets.clear()
        self._dirty.clear()
        self.position = 0
        return sum(ends.values())

    # -- internals -----------------------------------------------------------------------------------
    async def _poll(self, timeout: float) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"{self.group}: the source is not open")
        try:
            records = await consumer.getmany(timeout_ms=int(timeout * 1000), max_records=500)
        except KafkaError as error:  # the client recovers by itself; the worker must not die of it
            log.warning("fetch failed", group=self.group, error=repr(error))
            await asyncio.sleep(min(max(timeout, 0.05), 1.0))
            return
        for tp, messages in records.items():
            for message in messages:
                self._buffer.append((tp, message.offset, self._decode(message)))

    def _decode(self, message: ConsumerRecord[bytes, bytes]) -> Envelope:
        try:
            return self.decoder(message) if self.decoder is not None else decode(message.value or b"")
        except Exception as error:  # whatever a codec raises on bad bytes: the worker must not die of one record
            where = f"{message.topic}/{message.partition}@{message.offset}"
            log.error("undecodable record passed over", group=self.group, record=where, error=repr(error))
            return Envelope(id=f"undecodable:{where}", type=UNDECODABLE, stream=where, version=0, key=where,
                            occurred_at=datetime.fromtimestamp(message.timestamp / 1000, UTC), schema_version=1,
                            data={})

    async def _commit(self, tps: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets = {tp: self._offsets[tp] for tp in tps & consumer.assignment() if tp in self._offsets}
        if not offsets:
            return
        try:
            await bounded(consumer.commit(offsets), self.timeout)
        except (KafkaError, TimeoutError) as error:  # kept dirty: committed by a later flush, or re-delivered
            log.warning("offset commit failed", group=self.group, error=repr(error))
            return
        self._dirty -= offsets.keys()
        self._since_commit = 0

    async def _seed(self, tps: set[TopicPartition]) -> None:
        """Start the partitions' progress at their committed offsets (0 when none)."""
        consumer = self._consumer
        if consumer is None:
            return
        for tp in tps:
            if tp not in self._offsets:
                self._offsets[tp] = await consumer.committed(tp) or 0
        self.position = sum(self._offsets.values())

    async def _measure(self, consumer: AIOKafkaConsumer) -> int:
        tps = consumer.assignment()
        if not tps:
            return len(self._buffer)
        ends = await self.end_offsets.of(list(tps))
        behind = 0
        for tp in tps:
            behind += max(0, ends[tp] - await consumer.position(tp))  # not yet returned by the consumer
        await self._seed(set(tps))
        return behind + len(self._buffer)

    def _revoked(self, tps: set[TopicPartition]) -> None:
        self._buffer.clear()  # the new owners (maybe this member again) resume from the committed offsets
        for tp in tps:
            self._offsets.pop(tp, None)
            self._dirty.discard(tp)
        self.position = sum(self._offsets.values())


class _Rebalance(ConsumerRebalanceListener):
    """Commits what was acknowledged before partitions move to another member."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Commit the revoked partitions' acknowledged offsets while this member still owns them."""
        await self.source._commit(set(revoked))
        self.source._revoked(set(revoked))
        if revoked:
            log.info("partitions revoked", group=self.source.group, partitions=sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Nothing to load: the consumer resumes each partition from its committed offset."""
        log.debug("partitions assigned", group=self.source.group, partitions=sorted(tp.partition for tp in assigned))
