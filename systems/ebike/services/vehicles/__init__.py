"""vehicles: the fleet, its read model, and the autonomous a-bike digital twin.

    model     the event-sourced Vehicle and the tables committed with its events
    twin      movement, charging, following renters, a-bike requests (durable timers)
    view      the ``vehicles`` read model (rebuildable by replay)
    api       the HTTP contract
    geometry  distances and steps on the city plane
"""

from __future__ import annotations

from ebike.services.vehicles import api, twin, view
from ebike.services.vehicles.model import service

__all__ = ["api", "service", "twin", "view"]
