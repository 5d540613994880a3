"""The shop system: its services, its edge, and how junction serves it."""

from __future__ import annotations

from junction.mail.companion import MAIL_SINK
from junction.runtime import System
from shop import benchmarks, gateway
from shop.services import inventory, notification, order


def build() -> System:
    """The shop system definition."""
    return System(
        name="shop",
        services=[inventory.service, order.service, notification.service],
        port=9000,
        gateway=gateway.routes,
        companions=[MAIL_SINK],
        benchmarks={"shop": benchmarks.shop},
        description="orders, inventory over gRPC, order events and e-mail (COMP41720 lab 4)",
    )
