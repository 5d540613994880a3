"""Where a system's events live on Kafka: bootstrap address, topic and group names, topic creation, the codec.

One topic per source service (``<system>.<service>`` by default), keyed by stream id, the value the
envelope's JSON; exported events also on the topic their ``Service.export`` names (as is by
default); one consumer group per subscription (``<service>.<subscription>``). Every name can
be set by ``JUNCTION_KAFKA_*`` variables or the config file (``junction.config``), the same names the
Kubernetes manifests use.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from junction.config import Config, load
from junction.events import Envelope, dumps

log = structlog.get_logger()
TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class KafkaConfig:
    """How one system talks to Kafka."""

    system: str
    bootstrap: str = "127.0.0.1:59092"
    topic_template: str = "{system}.{service}"
    group_template: str = "{service}.{subscription}"
    # One partition: a consumer then sees a service's events in commit order, as the embedded log
    # gives them (handlers may rely on it). More spread a group's load, but keep order per stream only.
    partitions: int = 1
    replication: int = 1
    export_template: str = "{topic}"  # the topic a ``Service.export`` names, as is (tests give it a prefix)

    @classmethod
    def from_config(cls, system: str, config: Config | None = None) -> KafkaConfig:
        """``kafka_bootstrap``, ``_topic_template``, ``_group_template``, ``_partitions``, ``_replication``
        (``JUNCTION_KAFKA_*``) of ``config``, by default this process's configuration."""
        config = config or load()
        return cls(system, config.get("kafka_bootstrap") or cls.bootstrap, config.get("kafka_topic_template"),
                   config.get("kafka_group_template"), config.get("kafka_partitions"), config.get("kafka_replication"))

    def topic(self, service: str) -> str:
        """The topic that carries ``service``'s events."""
        return self.topic_template.format(system=self.system, service=service)

    def export_topic(self, topic: str) -> str:
        """The Kafka topic of a topic named by ``Service.export``."""
        return self.export_template.format(system=self.system, topic=topic)

    def group(self, service: str, subscription: str) -> str:
        """The consumer group of one subscription of ``service``."""
        return self.group_template.format(system=self.system, service=service, subscription=subscription)


async def ensure_topic(config: KafkaConfig, topic: str, timeout: float = 30.0) -> int:
    """Create ``topic`` unless it exists, wait until every partition has a leader; its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=config.bootstrap, client_id="junction-admin")
    try:
        await admin.start()
        response = await admin.create_topics([NewTopic(topic, config.partitions, config.replication)])
        for error in response.to_object()["topic_errors"]:
            if error["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {topic} failed: {error['error_message']} ({error['error_code']})")
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            described = await admin.describe_topics([topic])
            partitions = described[0]["partitions"] if described and described[0]["error_code"] == 0 else []
            if partitions and all(p["error_code"] == 0 and p["leader"] >= 0 for p in partitions):
                return len(partitions)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topic {topic} has no leader after {timeout} s")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


def encode(envelope: Envelope) -> tuple[bytes, bytes]:
    """The record's key (the stream id, so a stream stays in one partition, in order) and value."""
    return envelope.stream.encode(), dumps(envelope.to_json()).encode()


def decode(value: bytes) -> Envelope:
    """The envelope a record carries (``position`` is the event's place in its source log)."""
    raw = json.loads(value)
    return Envelope.from_json(raw)
