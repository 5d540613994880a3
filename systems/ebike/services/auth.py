"""auth: (being written)."""

from __future__ import annotations

from junction.service import Service

service = Service("auth", worker=1)
