"""The RabbitMQ transport: queue semantics for the subscriptions that want them.

Durable queues, persistent messages, publisher confirms, per-message TTL with dead-lettering and
competing consumers. Wiring a runtime to RabbitMQ takes two calls, as with Kafka::

    runtime = Runtime(system, data_dir, source_factory=rabbit_sources(config))
    await runtime.start()
    start_relays(runtime, config)   # each hosted service publishes its log to its exchange

``junction.infra.rabbitmq`` runs a local broker (Debian's ``rabbitmq-server``).
"""

from __future__ import annotations

from junction.rabbitmq.config import RabbitConfig
from junction.rabbitmq.queues import Subscriber, subscribers
from junction.rabbitmq.relay import RabbitRelay
from junction.rabbitmq.source import RabbitSource, ReplayUnsupported
from junction.runtime import Runtime, ServiceRuntime, SourceFactory
from junction.service import SubscriptionSpec
from junction.sources import Source

__all__ = ["RabbitConfig", "RabbitRelay", "RabbitSource", "ReplayUnsupported", "Subscriber", "rabbit_sources",
           "start_relays", "subscribers"]


def rabbit_sources(config: RabbitConfig, source_class: type[RabbitSource] = RabbitSource) -> SourceFactory:
    """A ``Runtime`` source factory: every subscription consumes its own queue.

    Projections are refused: a rebuild replays from the first event, which a queue no longer holds.
    """

    def make(service: ServiceRuntime, spec: SubscriptionSpec) -> Source:
        if spec.projection is not None:
            raise ReplayUnsupported(f"{service.spec.name}: projection {spec.projection!r} needs a source that "
                                    "can replay (the log or Kafka), not a RabbitMQ queue")
        return source_class(config, Subscriber.of(service.spec.name, spec), service.clock)

    return make


def start_relays(runtime: Runtime, config: RabbitConfig,
                 relay_class: type[RabbitRelay] = RabbitRelay) -> list[RabbitRelay]:
    """Run a relay for every service the (started) runtime hosts; ``settle`` waits for them too."""
    relays = []
    for name, service in runtime.services.items():
        relay = relay_class(service.store, config, subscribers(runtime.system, name), runtime.clock,
                            poll_interval=runtime.poll_interval)
        runtime.spawn(f"{name}/relay:rabbitmq", relay.run())
        runtime.quiet_checks.append(relay.idle)
        relays.append(relay)
    return relays
