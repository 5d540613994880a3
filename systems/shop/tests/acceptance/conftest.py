"""The shop on each topology: every acceptance test runs embedded and distributed (``junction.testing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from junction.mail import MailSink
from junction.testing import TOPOLOGIES, topology
from shop.tests.conftest import Shop, open_shop


@pytest.fixture(params=TOPOLOGIES)
async def shop(request: pytest.FixtureRequest, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Shop]:
    """The shop, embedded or distributed."""
    async with topology(request, "shop") as distributed, open_shop(tmp_path / "data", mail_sink,
                                                                    distributed) as running_shop:
        yield running_shop
