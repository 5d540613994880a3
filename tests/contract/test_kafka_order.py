"""Over Kafka, as on the embedded log, a consumer sees a service's events in commit order, across streams.

Handlers may rely on that order: a customer's next rental starts after the previous one stopped, on
another stream, and ebike's views of customers and vehicles follow them in that order. A topic of
several partitions (keyed by stream) would keep only each stream's order, and a consumer catching
up on a backlog would get the streams partition by partition (the fault tests,
``tests/integration/test_faults.py``, saw a customer's view lose its active rental that way).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from junction.clock import VirtualClock
from junction.kafka import KafkaConfig, kafka_sources, start_relays
from junction.kafka.broker import KafkaBroker
from junction.runtime import Runtime
from tests.unit import toy


async def test_a_backlog_of_many_streams_is_consumed_in_commit_order(kafka_broker: KafkaBroker,
                                                                     tmp_path: Path) -> None:
    run = f"t{uuid.uuid4().hex[:8]}"  # this test's topics and groups; every other setting is the default
    config = KafkaConfig("toy", kafka_broker.bootstrap, topic_template=run + ".{system}.{service}",
                         group_template=run + ".{service}.{subscription}")

    def runtime(service: str) -> Runtime:
        return Runtime(toy.system(), tmp_path, clock=VirtualClock(), poll_interval=0.01, only=[service],
                       source_factory=kafka_sources(config))

    placed = [(f"c{n}", n) for n in range(30)]  # one stream per customer
    async with runtime("orders") as orders:
        start_relays(orders, config)
        for customer, seq in placed:
            answer = await orders.client("orders").post("/orders", json={"customer": customer, "seq": seq})
            assert answer.status_code == 200, answer.text
        await orders.settle()  # every event is on the broker before any consumer runs: one backlog
    async with runtime("mailer") as mailer:
        await mailer.settle(timeout=60)
        assert await toy.sent(mailer.service("mailer").uow()) == placed
