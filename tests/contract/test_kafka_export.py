"""An event exported to a named Kafka topic as Avro (``Service.export``), against the real broker.

The toy shop (``tests/unit/toy_export.py``) exports ``OrderPlaced`` to ``order-placed`` with the shop
spec's Avro schema; its relay publishes both its own topic (JSON envelopes) and the exported one, and
the notifier's subscription reads the exported topic with the codec.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastavro import parse_schema, schemaless_reader

from junction.clock import VirtualClock
from junction.kafka import KafkaConfig, KafkaRelay, KafkaSource, kafka_sources, start_relays
from junction.kafka.broker import KafkaBroker
from junction.runtime import Runtime
from tests.unit import toy_export
from tests.unit.toy_export import SCHEMA

MAILS = "handlers:shop"


class Killed(BaseException):
    """Stands for the process dying."""


def configured(broker: KafkaBroker) -> KafkaConfig:
    run = f"t{uuid.uuid4().hex[:8]}"  # this test's topics and groups
    return KafkaConfig("toyexport", broker.bootstrap, topic_template=run + ".{system}.{service}",
                       group_template=run + ".{service}.{subscription}", export_template=run + ".{topic}")


def runtime(config: KafkaConfig, data: Path) -> Runtime:
    system = toy_export.system()
    return Runtime(system, data, clock=VirtualClock(), poll_interval=0.01,
                   source_factory=kafka_sources(config, system=system))


async def records(config: KafkaConfig, topic: str) -> list[Any]:
    """Every record on ``topic`` so far, read by a plain consumer (no group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[Any] = []
        while len(found) < sum(ends.values()):  # one test's topic: offsets start at 0, no compaction
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                found.extend(batch)
        return found
    finally:
        await consumer.stop()


async def place(rt: Runtime, order: str) -> None:
    answer = await rt.client("shop").post("/orders", json={"order_number": order, "email": "user@example.com"})
    assert answer.status_code == 200, answer.text


async def test_an_exported_event_is_avro_on_its_named_topic_and_consumed_from_there(
        kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    config = configured(kafka_broker)
    rt = runtime(config, tmp_path)
    await rt.start()
    try:
        start_relays(rt, config)
        await place(rt, "7ee2b6f2")
        await rt.settle(timeout=60)
        source = rt.service("notifier").subscriptions[MAILS].source
        assert isinstance(source, KafkaSource) and source.topic == config.export_topic("order-placed")
        # the record in the topic carries only the Avro fields: the event's default fills in the rest
        assert await toy_export.sent(rt.service("notifier").uow()) == [
            ("7ee2b6f2", "user@example.com: Hi John,Doe (no sku)")]
    finally:
        await rt.stop()

    (record,) = await records(config, config.export_topic("order-placed"))
    value = schemaless_reader(io.BytesIO(record.value), parse_schema(SCHEMA), None)  # a plain Avro reader
    assert value == {"orderNumber": "7ee2b6f2", "email": "user@example.com", "firstName": "John", "lastName": "Doe"}
    assert record.key == b"order-7ee2b6f2"
    headers = {name: raw.decode() for name, raw in record.headers}
    assert headers["type"] == "ToyExportOrderPlaced" and headers["stream"] == "order-7ee2b6f2"
    assert headers["id"] and headers["occurred_at"].startswith("2026-01-01T08:00")
    (own,) = await records(config, config.topic("shop"))  # the service's own topic has it too, as JSON
    assert b'"skuCode":"SKU001"' in own.value


async def test_a_redelivered_export_is_handled_once(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    config = configured(kafka_broker)

    class DiesBeforeCheckpoint(KafkaRelay):
        async def save(self, position: int) -> None:
            raise Killed

    first = runtime(config, tmp_path)
    await first.start()
    try:
        start_relays(first, config, DiesBeforeCheckpoint)
        await place(first, "o1")
        with pytest.raises(Killed):  # published to both topics, then died before saving its checkpoint
            await asyncio.wait_for(first._tasks["shop/relay:kafka"], 30)
    finally:
        await first.crash()

    second = runtime(config, tmp_path)
    await second.start()
    try:
        start_relays(second, config)
        await second.settle(timeout=60)
        assert await toy_export.sent(second.service("notifier").uow()) == [("o1", "user@example.com: Hi John,Doe "
                                                                                   "(no sku)")]
        worker = second.service("notifier").subscriptions[MAILS]
        assert worker.source.position == 2  # the record is on the exported topic twice, handled once
        await place(second, "o2")
        await second.settle(timeout=60)
        assert [order for order, _ in await toy_export.sent(second.service("notifier").uow())] == ["o1", "o2"]
    finally:
        await second.stop()
    assert len(await records(config, config.export_topic("order-placed"))) == 3
