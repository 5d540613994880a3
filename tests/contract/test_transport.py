"""The transport contract: every way a subscription gets its messages must pass all of it.

Parametrised over ``log`` (the embedded default: consumers read the source service's log directly),
``kafka`` (each service's outbox relay publishes to real Apache Kafka; consumers are consumer
groups) and ``rabbitmq`` (the relay publishes to a real RabbitMQ with confirms; each subscription
is a durable queue; where queue semantics differ, the test says so and skips). The toy system
(``tests/unit/toy.py``) runs on each: ``orders`` records ``OrderPlaced``, ``mailer`` sends one
mail per order and can be told to fail for chosen customers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from junction.clock import VirtualClock
from junction.infra.rabbitmq import LocalRabbit
from junction.kafka import KafkaConfig, KafkaRelay, KafkaSource, kafka_sources, start_relays
from junction.kafka.broker import KafkaBroker
from junction.rabbitmq import RabbitConfig, RabbitRelay, RabbitSource, rabbit_sources
from junction.rabbitmq import start_relays as start_rabbit_relays
from junction.runtime import Runtime
from junction.sources import LogSource, Source
from tests.unit import toy

FAST_RETRY, Killed = toy.FAST_RETRY, toy.Killed
MAILS = "handlers:orders"  # the mailer's subscription to the orders service


class Harness:
    """Builds toy runtimes whose consumers read one transport."""

    name = ""
    relay_class: type[Any] | None = None  # the outbox relay, when events travel through a broker
    relay_checkpoint = ""
    queue = False  # a queue: acknowledged messages are gone (no replay; ``position`` counts acknowledgements)
    broker: Any = None  # the broker process (stop/start), when there is one

    def runtime(self, data: Path, only: list[str] | None = None, source_class: type[Any] | None = None) -> Runtime:
        """A runtime of the toy system (or of ``only`` its named services)."""
        raise NotImplementedError

    async def start(self, rt: Runtime, relay_class: type[Any] | None = None) -> Runtime:
        """Start the runtime and whatever carries its events (through ``relay_class`` when given)."""
        await rt.start()
        return rt

    def source(self, rt: Runtime, service: str, subscription: str) -> Source:
        """A stand-alone source of one subscription (for rewinding it while no worker runs)."""
        raise NotImplementedError

    def dying_source(self) -> type[Any]:
        """A source class whose process dies when it makes progress durable."""
        raise NotImplementedError


class LogHarness(Harness):
    name = "log"

    def runtime(self, data: Path, only: list[str] | None = None, source_class: type[Any] | None = None) -> Runtime:
        rt = Runtime(toy.system(), data, clock=VirtualClock(), retry=FAST_RETRY, poll_interval=0.01, only=only)
        if source_class is not None:
            chosen = source_class
            rt.source_factory = lambda service, spec: chosen(rt.service(spec.source).store, service.store, spec.name)
        return rt

    def source(self, rt: Runtime, service: str, subscription: str) -> Source:
        spec = rt.service(service).spec.subscriptions[subscription]
        return LogSource(rt.service(spec.source).store, rt.service(service).store, subscription)

    def dying_source(self) -> type[Any]:
        class DiesOnFlush(LogSource):
            async def flush(self) -> None:
                if self.position > self._saved:
                    raise Killed

        return DiesOnFlush


class KafkaHarness(Harness):
    name = "kafka"
    relay_class = KafkaRelay
    relay_checkpoint = "relay:kafka"

    def __init__(self, broker: KafkaBroker) -> None:
        self.broker = broker
        run = f"t{uuid.uuid4().hex[:8]}"  # topics and groups of this test only
        # Three partitions, not the default one: the contract (per-key order, parking, rebalances) must
        # hold when a topic is spread over several, which is when members of a group share its load.
        self.config = KafkaConfig("toy", broker.bootstrap, topic_template=run + ".{system}.{service}",
                                  group_template=run + ".{service}.{subscription}", partitions=3)
        self.relays: list[KafkaRelay] = []

    def runtime(self, data: Path, only: list[str] | None = None, source_class: type[Any] | None = None) -> Runtime:
        return Runtime(toy.system(), data, clock=VirtualClock(), retry=FAST_RETRY, poll_interval=0.01, only=only,
                       source_factory=kafka_sources(self.config, source_class or KafkaSource))

    async def start(self, rt: Runtime, relay_class: type[Any] | None = None) -> Runtime:
        await rt.start()
        self.relays = start_relays(rt, self.config, relay_class or KafkaRelay)
        return rt

    def source(self, rt: Runtime, service: str, subscription: str) -> Source:
        spec = rt.service(service).spec.subscriptions[subscription]
        return KafkaSource(self.config, service, subscription, spec.source, rt.service(service).store)

    def dying_source(self) -> type[Any]:
        class DiesOnFlush(KafkaSource):
            async def flush(self) -> None:
                if self._dirty:
                    raise Killed

        return DiesOnFlush


class RabbitHarness(Harness):
    name = "rabbitmq"
    relay_class = RabbitRelay
    relay_checkpoint = "relay:rabbitmq"
    queue = True

    def __init__(self, broker: LocalRabbit) -> None:
        self.broker = broker
        run = f"t{uuid.uuid4().hex[:8]}"  # exchanges and queues of this test only
        self.config = RabbitConfig("toy", broker.url, exchange_template=run + ".{system}.{service}",
                                   queue_template=run + ".{system}.{service}.{subscription}")
        self.relays: list[RabbitRelay] = []

    def runtime(self, data: Path, only: list[str] | None = None, source_class: type[Any] | None = None) -> Runtime:
        return Runtime(toy.system(), data, clock=VirtualClock(), retry=FAST_RETRY, poll_interval=0.01, only=only,
                       source_factory=rabbit_sources(self.config, source_class or RabbitSource))

    async def start(self, rt: Runtime, relay_class: type[Any] | None = None) -> Runtime:
        await rt.start()
        self.relays = start_rabbit_relays(rt, self.config, relay_class or RabbitRelay)
        return rt

    def dying_source(self) -> type[Any]:
        class DiesOnFlush(RabbitSource):
            async def flush(self) -> None:
                if self._unacked is not None:
                    raise Killed

        return DiesOnFlush


def harness(request: pytest.FixtureRequest, name: str) -> Harness:
    """The harness of transport ``name`` (starting its broker for the session on first use)."""
    if name == "kafka":
        return KafkaHarness(request.getfixturevalue("kafka_broker"))
    if name == "rabbitmq":
        return RabbitHarness(request.getfixturevalue("rabbitmq_broker"))
    return LogHarness()


@pytest.fixture(params=["log", "kafka", "rabbitmq"])
def transport(request: pytest.FixtureRequest) -> Harness:
    """One transport harness (the test runs once per transport)."""
    return harness(request, request.param)


@pytest.fixture(params=["kafka", "rabbitmq"])
def brokered(request: pytest.FixtureRequest) -> Harness:
    """One harness of a transport with a broker process (the test runs once per broker)."""
    return harness(request, request.param)


@pytest.fixture(autouse=True)
def healthy_mailer() -> Iterator[None]:
    toy.failing_customers.clear()
    yield
    toy.failing_customers.clear()


async def place(rt: Runtime, customer: str, seq: int) -> None:
    response = await rt.client("orders").post("/orders", json={"customer": customer, "seq": seq})
    assert response.status_code == 200, response.text


async def sent(rt: Runtime) -> list[tuple[str, int]]:
    return await toy.sent(rt.service("mailer").uow())


async def test_crash_after_handling_before_progress_is_saved_redelivers_once(
        transport: Harness, tmp_path: Path) -> None:
    first = await transport.start(transport.runtime(tmp_path, source_class=transport.dying_source()))
    try:
        await place(first, "ann", 1)
        worker = first.service("mailer").subscriptions[MAILS]
        with pytest.raises(Killed):
            await asyncio.wait_for(first._tasks[f"mailer/{MAILS}"], 30)  # handled, then died saving progress
        assert worker.handled == 1
    finally:
        await first.crash()

    second = await transport.start(transport.runtime(tmp_path))
    try:
        await second.settle()
        assert await sent(second) == [("ann", 1)]  # delivered again, and the inbox made it a no-op
        again = second.service("mailer").subscriptions[MAILS]
        assert again.handled == 0 and again.position > 0
    finally:
        await second.stop()


async def test_crash_after_publish_before_relay_checkpoint_publishes_again_handled_once(
        transport: Harness, tmp_path: Path) -> None:
    if transport.relay_class is None:
        pytest.skip("no relay: consumers read the log itself")

    class DiesBeforeCheckpoint(transport.relay_class):
        async def save(self, position: int) -> None:
            raise Killed

    checkpoint = transport.relay_checkpoint
    first = await transport.start(transport.runtime(tmp_path), relay_class=DiesBeforeCheckpoint)
    try:
        await place(first, "bea", 1)
        with pytest.raises(Killed):
            await asyncio.wait_for(first._tasks[f"orders/{checkpoint}"], 30)  # published, then died
        assert await first.service("orders").store.checkpoint(checkpoint) == 0
    finally:
        await first.crash()

    second = await transport.start(transport.runtime(tmp_path))
    try:
        await second.settle()
        assert await sent(second) == [("bea", 1)]
        assert await second.service("orders").store.checkpoint(checkpoint) > 0
        source = second.service("mailer").subscriptions[MAILS].source
        if transport.queue:  # the first copy may have gone to the crashed consumer, the second came here
            assert source.position >= 1
        else:
            assert source.position == 2  # the event is on the topic twice, handled once
    finally:
        await second.stop()


async def test_poison_parks_its_key_in_order_while_other_keys_go_on(transport: Harness, tmp_path: Path) -> None:
    toy.failing_customers.add("bob")
    rt = await transport.start(transport.runtime(tmp_path))
    try:
        for seq in range(3):
            await place(rt, "bob", seq)
            await place(rt, "ann", seq)
        await rt.settle()
        mailer = rt.service("mailer")
        assert await sent(rt) == [("ann", 0), ("ann", 1), ("ann", 2)]
        parked = await mailer.store.parked(MAILS)
        assert [(p.key, p.envelope.data["seq"]) for p in parked] == [("bob", 0), ("bob", 1), ("bob", 2)]
        assert "mail server rejects bob" in (parked[0].error or "") and parked[1].error is None

        toy.failing_customers.clear()
        await place(rt, "bob", 3)  # arrives while bob is parked: waits behind the others
        await rt.settle()
        assert ("bob", 3) not in await sent(rt)
        await mailer.store.request_retry(MAILS, "bob")
        await rt.settle()
        assert [m for m in await sent(rt) if m[0] == "bob"] == [("bob", 0), ("bob", 1), ("bob", 2), ("bob", 3)]
        assert await mailer.store.parked() == []
    finally:
        await rt.stop()


async def test_replay_from_zero_delivers_everything_again(transport: Harness, tmp_path: Path) -> None:
    if transport.queue:
        pytest.skip("a queue keeps no acknowledged message: there is nothing to replay (rewind refuses)")
    rt = await transport.start(transport.runtime(tmp_path))
    try:
        for seq in range(5):
            await place(rt, "cy", seq)
        await rt.settle()
        assert len(await sent(rt)) == 5
    finally:
        await rt.stop()

    again = transport.runtime(tmp_path)
    await again.open()
    source = transport.source(again, "mailer", MAILS)
    assert await source.rewind() == 5  # the backlog: every message from the first
    await again.service("mailer").store.truncate(["mails"])
    await transport.start(again)
    try:
        await again.settle()
        assert await sent(again) == [("cy", seq) for seq in range(5)]  # the inbox was forgotten too
        assert again.service("mailer").subscriptions[MAILS].handled == 5
    finally:
        await again.stop()


async def test_consumer_started_after_publishing_reads_from_the_earliest(transport: Harness, tmp_path: Path) -> None:
    orders_only = await transport.start(transport.runtime(tmp_path, only=["orders"]))
    try:
        await place(orders_only, "early", 1)
        await orders_only.settle()  # published (kafka: acknowledged by the broker)
    finally:
        await orders_only.stop()
    rt = await transport.start(transport.runtime(tmp_path))
    try:
        await rt.settle()
        assert await sent(rt) == [("early", 1)]
    finally:
        await rt.stop()


# -- What the broker itself can do to a running system ------------------------------------------------


async def until(condition: Any, timeout: float = 30.0) -> None:
    """Wait until ``condition()`` holds (polling; for states only the broker decides)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def assignment(rt: Runtime) -> set[int]:
    """The partitions the mailer's consumer in ``rt`` owns now."""
    source = rt.service("mailer").subscriptions[MAILS].source
    assert isinstance(source, KafkaSource)
    consumer = source._consumer
    return {tp.partition for tp in consumer.assignment()} if consumer is not None else set()


def assert_each_once_in_order(mails: list[tuple[str, int]], customers: list[str], count: int) -> None:
    for customer in customers:
        assert [seq for who, seq in mails if who == customer] == list(range(count)), customer
    assert len(mails) == len(customers) * count


async def test_broker_stopped_and_restarted_mid_stream_loses_nothing(brokered: Harness, tmp_path: Path) -> None:
    broker = brokered.broker
    customers = ["ada", "ben", "cal", "dot"]
    rt = await brokered.start(brokered.runtime(tmp_path))
    try:
        async def stream(seqs: range) -> None:
            for seq in seqs:
                for customer in customers:
                    await place(rt, customer, seq)
                await asyncio.sleep(0.01)

        await stream(range(10))
        await rt.settle()  # the consumer group is established and caught up
        flowing = asyncio.create_task(stream(range(10, 40)))
        await asyncio.sleep(0.05)
        broker.stop()  # orders keep committing to their store meanwhile
        await asyncio.sleep(0.3)
        broker.start(attached=True)
        await flowing
        await rt.settle(timeout=120)
        assert_each_once_in_order(await sent(rt), customers, 40)
    finally:
        await rt.stop()
        broker.start(attached=True)  # for the tests after this one, whatever happened


async def test_rebalances_move_partitions_without_loss_or_reordering(
        kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    harness = KafkaHarness(kafka_broker)
    customers = [f"c{n}" for n in range(8)]
    orders = await harness.start(harness.runtime(tmp_path, only=["orders"]))
    first = await harness.start(harness.runtime(tmp_path, only=["mailer"]))
    second: Runtime | None = None
    enough = asyncio.Event()
    try:
        async def stream() -> int:
            rounds = 0
            while not enough.is_set() or rounds < 5:
                for customer in customers:
                    await place(orders, customer, rounds)
                rounds += 1
                await asyncio.sleep(0.02)
            return rounds

        flowing = asyncio.create_task(stream())
        await until(lambda: first.service("mailer").subscriptions[MAILS].handled > 0)
        second = await harness.start(harness.runtime(tmp_path, only=["mailer"]))  # joins: partitions move
        await until(lambda: bool(assignment(first)) and bool(assignment(second))
                    and assignment(first) | assignment(second) == {0, 1, 2})
        await asyncio.sleep(0.2)
        await first.stop()  # leaves: the second member takes every partition
        await until(lambda: assignment(second) == {0, 1, 2})
        await asyncio.sleep(0.2)
        enough.set()
        rounds = await flowing
        await orders.settle()
        await second.settle(timeout=60)
        assert_each_once_in_order(await sent(second), customers, rounds)
        handled = [rt.service("mailer").subscriptions[MAILS].handled for rt in (first, second)]
        assert all(handled) and sum(handled) == len(customers) * rounds  # both members worked, none twice
    finally:
        enough.set()
        for rt in (orders, first, second):
            if rt is not None:
                await rt.stop()
