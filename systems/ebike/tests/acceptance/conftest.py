"""Fixtures of the acceptance tests: a fresh ebike behind its gateway per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ebike.gateway.app import Settings
from ebike.tests.acceptance.harness import Stack, open_stack, settings_with_keys


@pytest.fixture(scope="session")
def gateway_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One RSA key pair for the whole session (generating one costs more than a test)."""
    return settings_with_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
async def stack(tmp_path: Path, gateway_settings: Settings) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path / "data", gateway_settings) as running:
        yield running
