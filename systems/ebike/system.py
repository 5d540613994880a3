"""The ebike system: its services, and how junction serves it."""

from __future__ import annotations

from junction.runtime import System

from ebike.services import stations


def build() -> System:
    """The ebike system definition."""
    return System(
        name="ebike",
        services=[stations.service],
        port=4000,
        description="e-bike rentals with event-sourced accounting and autonomous a-bikes",
    )
