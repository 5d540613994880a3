"""The Apache Kafka transport: an outbox relay per service and a consumer-group source per subscription.

Wiring a runtime to Kafka takes two calls::

    runtime = Runtime(system, data_dir, source_factory=kafka_sources(config))
    await runtime.start()
    start_relays(runtime, config)   # each hosted service publishes its log to its topic (and its exports)

With ``kafka_sources(config, system=system)`` a subscription to events its source exports
(``Service.export``) reads the exported topic with their codec instead of the source's topic.

``junction.kafka.broker`` runs the broker itself (a single KRaft node from Maven Central jars).
"""

from __future__ import annotations

from junction.kafka.config import KafkaConfig, ensure_topic
from junction.kafka.exports import exported_topic
from junction.kafka.offsets import EndOffsets
from junction.kafka.relay import KafkaRelay
from junction.kafka.source import KafkaSource
from junction.runtime import Runtime, ServiceRuntime, SourceFactory, System
from junction.service import SubscriptionSpec
from junction.sources import Source

__all__ = ["KafkaConfig", "KafkaRelay", "KafkaSource", "ensure_topic", "kafka_sources", "start_relays"]


def kafka_sources(config: KafkaConfig, source_class: type[KafkaSource] = KafkaSource,
                  system: System | None = None) -> SourceFactory:
    """A ``Runtime`` source factory: every subscription reads its source service's topic, or, given the
    ``system``, the topic its source exports its events to (``Service.export``) with their codec."""
    end_offsets = EndOffsets(config.bootstrap)  # one connection for every source's lag

    def make(service: ServiceRuntime, spec: SubscriptionSpec) -> Source:
        exports = system.service(spec.source).exports if system is not None else []
        exported = exported_topic(config, service.spec.name, spec, exports)
        if exported is None:
            return source_class(config, service.spec.name, spec.name, spec.source, service.store,
                                end_offsets=end_offsets)
        return source_class(config, service.spec.name, spec.name, spec.source, service.store,
                            end_offsets=end_offsets, topic=exported.topic, decoder=exported)

    return make


def start_relays(runtime: Runtime, config: KafkaConfig, relay_class: type[KafkaRelay] = KafkaRelay) -> list[KafkaRelay]:
    """Run a relay for every service the (started) runtime hosts; ``settle`` waits for them too."""
    relays = []
    for name, service in runtime.services.items():
        relay = relay_class(service.store, config, poll_interval=runtime.poll_interval, exports=service.spec.exports)
        runtime.spawn(f"{name}/relay:kafka", relay.run())
        runtime.quiet_checks.append(relay.idle)
        relays.append(relay)
    return relays
