"""How one system talks to RabbitMQ: the broker's URL, exchange and queue names, prefetch.

One durable direct exchange per source service (``<system>.<service>``), routing key = event type;
one durable queue per subscription (``<system>.<service>.<subscription>``), bound for the event types
it handles; beside it a dead-letter queue (``<queue>.dead``) that receives what expires or is
rejected. Every name can be set by environment variables, the same ones the Kubernetes manifests use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:56720/"  # the node of ``scripts/rabbitmq.sh start``


@dataclass(frozen=True)
class RabbitConfig:
    """How one system talks to RabbitMQ."""

    system: str
    url: str = DEFAULT_URL
    exchange_template: str = "{system}.{service}"
    queue_template: str = "{system}.{service}.{subscription}"
    prefetch: int = 100  # unacknowledged messages the broker lets one consumer hold (QoS)
    ack_every: int = 20  # a consumer acknowledges in batches of this many (and whenever it is caught up)

    @classmethod
    def from_env(cls, system: str) -> RabbitConfig:
        """``JUNCTION_RABBITMQ_URL``, ``_EXCHANGE_TEMPLATE``, ``_QUEUE_TEMPLATE``, ``_PREFETCH``, ``_ACK_EVERY``."""
        env = os.environ.get
        return cls(system, env("JUNCTION_RABBITMQ_URL", cls.url),
                   env("JUNCTION_RABBITMQ_EXCHANGE_TEMPLATE", cls.exchange_template),
                   env("JUNCTION_RABBITMQ_QUEUE_TEMPLATE", cls.queue_template),
                   int(env("JUNCTION_RABBITMQ_PREFETCH", str(cls.prefetch))),
                   int(env("JUNCTION_RABBITMQ_ACK_EVERY", str(cls.ack_every))))

    def exchange(self, service: str) -> str:
        """The exchange ``service``'s relay publishes to."""
        return self.exchange_template.format(system=self.system, service=service)

    def queue(self, service: str, subscription: str) -> str:
        """The queue one subscription of ``service`` consumes (shared by every instance of the service)."""
        return self.queue_template.format(system=self.system, service=service, subscription=subscription)

    def dead_letter_queue(self, service: str, subscription: str) -> str:
        """Where that queue's expired and rejected messages go, for an operator to inspect."""
        return self.queue(service, subscription) + ".dead"
