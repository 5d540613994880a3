"""The ebike system: its services, and how junction serves it."""

from __future__ import annotations

from ebike.services import accounting, auth, customers, rentals, stations, vehicles
from junction.runtime import System


def build() -> System:
    """The ebike system definition."""
    return System(
        name="ebike",
        services=[auth.service, accounting.service, rentals.service, stations.service, vehicles.service,
                  customers.service],
        port=4000,
        description="e-bike rentals with event-sourced accounting and autonomous a-bikes",
    )
