"""rentals: (being written)."""

from __future__ import annotations

from junction.service import Service

service = Service("rentals", worker=6)
