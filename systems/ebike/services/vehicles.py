"""vehicles: (being written)."""

from __future__ import annotations

from junction.service import Service

service = Service("vehicles", worker=3)
