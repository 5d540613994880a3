"""The embedded queue (``junction.queues``): per-recipient messages with deadlines on the platform clock.

A message reaching its consumer after its ``expiresAt`` is dead-lettered, never handled, and the
checkpoint still moves past it; messages without a deadline, or still in time, are handled as usual.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from junction.clock import VirtualClock
from junction.events import Event
from junction.queues import QueueSource, QueueSources, is_queued, queued
from junction.runtime import Runtime, System
from junction.service import Service
from junction.uow import UnitOfWork


class Notice(Event):
    """A toy message for one recipient, with an optional deadline."""

    event_name = "test_queues.Notice"
    recipient: str
    expires_at: str | None = None


def toy() -> tuple[System, list[str]]:
    """A sender with a route, and a receiver that records what it handled through a queue subscription."""
    handled: list[str] = []
    sender = Service("sender", worker=1)
    receiver = Service("receiver", worker=2)
    feed = Service("feed", worker=3)

    @sender.route("POST", "/notices/{recipient}")
    async def send(recipient: str, uow: UnitOfWork) -> None:
        deadline = uow.now() + timedelta(minutes=10)
        uow.append(f"notice-{recipient}", Notice(recipient=recipient, expires_at=deadline.isoformat()))

    @sender.route("POST", "/plain/{recipient}")
    async def plain(recipient: str, uow: UnitOfWork) -> None:
        uow.append(f"notice-{recipient}", Notice(recipient=recipient))

    @queued(receiver, "sender", Notice)
    async def receive(event: Notice, uow: UnitOfWork) -> None:
        handled.append(event.recipient)

    @feed.on("sender", Notice)
    async def follow(event: Notice, uow: UnitOfWork) -> None:
        handled.append(f"feed:{event.recipient}")

    return System("queues", [sender, receiver, feed]), handled


def runtime(system: System, path: Path, clock: VirtualClock, only: list[str]) -> Runtime:
    """A runtime of ``only`` wired as ``junction.topology`` does embedded."""
    sources = QueueSources()
    return sources.bind(Runtime(system, path, clock=clock, only=only, source_factory=sources, poll_interval=0.02))


def test_queued_subscriptions_are_named_so() -> None:
    system, _ = toy()
    assert [is_queued(s) for s in system.service("receiver").subscriptions.values()] == [True]
    assert [is_queued(s) for s in system.service("feed").subscriptions.values()] == [False]


async def test_messages_in_time_are_handled(tmp_path: Path) -> None:
    system, handled = toy()
    clock = VirtualClock()
    async with runtime(system, tmp_path, clock, ["sender", "receiver", "feed"]) as rt:
        await rt.client("sender").post("/notices/ana")
        await clock.advance(timedelta(minutes=9))
        assert sorted(handled) == ["ana", "feed:ana"]


async def test_an_expired_message_is_dead_lettered_and_the_rest_go_on(tmp_path: Path) -> None:
    system, handled = toy()
    clock = VirtualClock()
    async with runtime(system, tmp_path, clock, ["sender"]) as sender:
        await sender.client("sender").post("/notices/ana")  # its deadline: in 10 minutes
        await sender.client("sender").post("/plain/ben")  # no deadline
        await clock.advance(timedelta(minutes=10))  # nobody consumed meanwhile (the receiver is down)
        async with runtime(system, tmp_path, clock, ["receiver"]) as receiver:
            await clock.advance(timedelta(seconds=1))
            worker = receiver.service("receiver").subscriptions["queue:sender"]
            assert isinstance(worker.source, QueueSource)
            assert handled == ["ben"]
            assert worker.source.dead_lettered == 1
            shown = (await receiver.status())["services"]["receiver"]["consumers"]["queue:sender"]
            assert (shown["via"], shown["dead_lettered"], shown["lag"]) == ("queue", 1, 0)
            assert worker.position == await sender.service("sender").store.head()  # the checkpoint moved past it
        async with runtime(system, tmp_path, clock, ["receiver", "feed"]):  # started again: nothing twice
            await clock.advance(timedelta(seconds=1))
            assert sorted(handled) == ["ben", "feed:ana", "feed:ben"]  # a feed is no queue: no deadline there


async def test_status_shows_queue_subscriptions_via_the_queue_with_their_depth(tmp_path: Path) -> None:
    from junction.config import Config
    from junction.operations import Deployment, status

    system, handled = toy()
    clock = VirtualClock()
    async with runtime(system, tmp_path, clock, ["sender", "receiver", "feed"]) as rt:
        await rt.client("sender").post("/plain/ana")
        await rt.settle()
        assert sorted(handled) == ["ana", "feed:ana"]
        consumers = (await rt.status())["services"]
        assert consumers["receiver"]["consumers"]["queue:sender"]["via"] == "queue"
        assert consumers["feed"]["consumers"]["handlers:sender"]["via"] == "log"
    async with runtime(system, tmp_path, clock, ["sender"]) as rt:  # nobody consumes these two
        await rt.client("sender").post("/plain/ben")
        await rt.client("sender").post("/plain/eva")
    report = await status(Deployment(system, tmp_path, Config(env={})), clock)  # offline, from the stores
    queue = report["services"]["receiver"]["consumers"]["queue:sender"]
    feed = report["services"]["feed"]["consumers"]["handlers:sender"]
    assert (queue["via"], queue["lag"], feed["via"], feed["lag"]) == ("queue", 2, "log", 2)
    assert report["rabbitmq"] is None and report["rabbitmq_error"] is None


def test_the_topology_routes_queue_subscriptions(tmp_path: Path) -> None:
    """Embedded, queue subscriptions get the embedded queue; distributed with the broker declared, RabbitMQ."""
    from junction.config import Config
    from junction.rabbitmq import RabbitSource
    from junction.topology import Topology

    system, _ = toy()
    embedded = Topology.from_config(Config(env={}))
    assert isinstance(embedded.runtime(system, tmp_path, VirtualClock(), None).source_factory, QueueSources)
    assert embedded.rabbit(system) is None

    queued_system = System("queues", system.services, brokers=frozenset({"rabbitmq"}))
    config = Config(env={"JUNCTION_DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
                         "JUNCTION_KAFKA_BOOTSTRAP": "127.0.0.1:1", "JUNCTION_RABBITMQ_URL": "amqp://g:g@127.0.0.1:2/"})
    distributed = Topology.from_config(config)
    rabbit = distributed.rabbit(queued_system)
    assert rabbit is not None and rabbit.url == "amqp://g:g@127.0.0.1:2/"
    runtime = distributed.runtime(queued_system, tmp_path, VirtualClock(), ["receiver", "feed"])
    sources = runtime.source_factory
    assert isinstance(sources, QueueSources) and sources.runtime is runtime
    receiver = runtime.service("receiver")
    assert isinstance(sources(receiver, receiver.spec.subscriptions["queue:sender"]), RabbitSource)
    feed = runtime.service("feed")
    assert not isinstance(sources(feed, feed.spec.subscriptions["handlers:sender"]), RabbitSource)  # Kafka
    assert distributed.rabbit(system) is None  # a system that does not declare the broker keeps Kafka
