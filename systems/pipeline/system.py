"""The pipeline system: its services, its edge, and how junction serves it."""

from __future__ import annotations

from junction.runtime import System


def build() -> System:
    """The pipeline system definition."""
    return System(name="pipeline", services=[])
