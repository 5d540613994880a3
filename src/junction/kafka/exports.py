"""Events exported to named topics (``Service.export``): how the relay writes them and how consumers read them.

An exported record's key is the stream id and its value the codec's bytes (Avro for the shop's
``order-placed``); the envelope travels in the record headers (``id``, ``type``, ``stream``,
``occurred_at``, ...), so a consumer that reads the topic through a junction subscription gets the
same envelope id as from the service's own topic, and its inbox makes a redelivery a no-op.
A record without headers (another producer) is read by its topic's only codec, its id made from
its place on the topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka import ConsumerRecord

from junction.events import Envelope, registry
from junction.kafka.config import KafkaConfig
from junction.service import Codec, ExportSpec, SubscriptionSpec

if TYPE_CHECKING:
    from junction.runtime import System

Headers = list[tuple[str, bytes]]


def export_headers(envelope: Envelope, codec: Codec, source: str) -> Headers:
    """The record headers that carry ``envelope`` (but its payload) beside the codec's value."""
    fields = {
        "id": envelope.id, "type": envelope.type, "stream": envelope.stream, "version": str(envelope.version),
        "key": envelope.key, "occurred_at": envelope.occurred_at.isoformat(), "source": envelope.source or source,
        "position": str(envelope.position), "schema_id": codec.schema_id,
        "causation_id": envelope.causation_id, "correlation_id": envelope.correlation_id,
    }
    return [(name, value.encode()) for name, value in fields.items() if value is not None]


def encode_export(envelope: Envelope, codec: Codec, topic: str, source: str) -> tuple[bytes, bytes, Headers]:
    """Key, value and headers of ``envelope``'s record on an exported topic."""
    try:
        # the payload in the event class's current shape (upcast when it was stored by an older version)
        value = codec.encode(envelope.event.payload())
    except Exception as error:  # a payload the codec refuses: say which event, the relay retries it
        raise ValueError(f"cannot encode {envelope.type} {envelope.id} for topic {topic}: {error!r}") from error
    return envelope.stream.encode(), value, export_headers(envelope, codec, source)


class ExportedRecords:
    """Turns records of one exported topic back into envelopes, with the codec their ``type`` header names."""

    def __init__(self, topic: str, source: str, codecs: Mapping[str, Codec]) -> None:
        self.topic = topic
        self.source = source
        self.codecs = dict(codecs)

    def __call__(self, record: ConsumerRecord[bytes, bytes]) -> Envelope:
        """The envelope a record carries; ValueError when no codec of this topic can read it."""
        headers = {name: value.decode() for name, value in record.headers or ()}
        where = f"{record.topic}/{record.partition}@{record.offset}"
        kind = headers.get("type") or (next(iter(self.codecs)) if len(self.codecs) == 1 else "")
        codec = self.codecs.get(kind)
        if codec is None:
            raise ValueError(f"{where}: no codec for event type {kind!r} on topic {self.topic}")
        stream = headers.get("stream") or (record.key.decode() if record.key else where)
        occurred = headers.get("occurred_at")
        return Envelope(
            id=headers.get("id", where), type=kind, stream=stream, version=int(headers.get("version", 0)),
            key=headers.get("key", stream),
            occurred_at=datetime.fromisoformat(occurred) if occurred else datetime.fromtimestamp(
                record.timestamp / 1000, UTC),
            schema_version=registry.get(kind).schema_version if registry.known(kind) else 1,
            data=codec.decode(record.value or b"", headers.get("schema_id")),
            source=headers.get("source", self.source), position=int(headers.get("position", 0)),
            causation_id=headers.get("causation_id"), correlation_id=headers.get("correlation_id"),
        )


def exported_topic(config: KafkaConfig, service: str, spec: SubscriptionSpec,
                   exports: list[ExportSpec]) -> ExportedRecords | None:
    """How subscription ``spec`` of ``service`` reads its events when its source exports them to a topic.

    None when the source exports none of them (the subscription reads the source's own topic). A
    subscription whose events are exported in part, or to several topics, is refused: the order of
    one topic's records is all a consumer can rely on; declare such handlers in separate groups.
    """
    by_type = {e.event.event_name: e for e in exports}
    handled = set(spec.handlers)
    carried = handled & by_type.keys()
    if not carried:
        return None
    if carried != handled:
        raise ValueError(
            f"{service}: subscription {spec.name} handles {', '.join(sorted(carried))} (exported by {spec.source} "
            f"to a topic) and {', '.join(sorted(handled - carried))} (not exported): declare them in separate "
            "groups (Service.on(..., group=...))")
    topics = {by_type[kind].topic for kind in carried}
    if len(topics) > 1:
        raise ValueError(f"{service}: subscription {spec.name} handles events exported to several topics "
                         f"({', '.join(sorted(topics))}): declare one group per topic (Service.on(..., group=...))")
    topic = topics.pop()
    codecs = {e.event.event_name: e.codec for e in exports if e.topic == topic}
    return ExportedRecords(config.export_topic(topic), spec.source, codecs)


def subscription_topic(config: KafkaConfig, system: System, service: str, spec: SubscriptionSpec) -> str:
    """The topic subscription ``spec`` of ``service`` reads: the exported one, or its source service's own."""
    exported = exported_topic(config, service, spec, system.service(spec.source).exports)
    return exported.topic if exported is not None else config.topic(spec.source)
