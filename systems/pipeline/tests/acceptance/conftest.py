"""The pipeline on each topology: every acceptance test runs embedded and distributed (``junction.testing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from junction.mail import MailSink
from junction.testing import TOPOLOGIES, topology
from pipeline.tests.conftest import Pipeline, open_pipeline


@pytest.fixture(params=TOPOLOGIES)
async def pipeline(request: pytest.FixtureRequest, tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Pipeline]:
    """The pipeline, embedded or distributed."""
    async with topology(request, "pipeline") as distributed, open_pipeline(tmp_path / "data", mail_sink,
                                                                            distributed) as running_pipeline:
        yield running_pipeline
