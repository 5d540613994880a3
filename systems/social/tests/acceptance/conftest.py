"""social on each topology: every acceptance test runs embedded and distributed (``junction.testing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from junction.testing import TOPOLOGIES, topology
from social.tests.conftest import Social, open_social


@pytest.fixture(params=TOPOLOGIES)
async def social(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Social]:
    """The social system, embedded or distributed."""
    async with topology(request, "social") as distributed, open_social(tmp_path / "data", distributed) as running:
        yield running
