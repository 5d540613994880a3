"""Fixtures for ebike tests: the whole system embedded, on a virtual clock, in a temp directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ebike.system import build
from junction.clock import VirtualClock
from junction.runtime import Runtime


class Ebike:
    """The running system plus helpers that call services' internal HTTP contracts."""

    def __init__(self, runtime: Runtime, clock: VirtualClock) -> None:
        self.runtime = runtime
        self.clock = clock

    async def call(self, service: str, method: str, path: str, json: Any = None,
                   headers: dict[str, str] | None = None, expect: int | None = 200) -> Any:
        """Call a service; check the status (when ``expect`` is given) and return the JSON body."""
        response = await self.runtime.client(service).request(method, path, json=json, headers=headers)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    async def settle(self) -> None:
        """Wait until every consumer caught up and no timer is due."""
        await self.runtime.settle()

    async def advance(self, seconds: float) -> None:
        """Move platform time forward; everything due on the way fires and settles."""
        await self.clock.advance(seconds)


@pytest.fixture
async def ebike(tmp_path: Path) -> AsyncIterator[Ebike]:
    clock = VirtualClock()
    runtime = Runtime(build(), tmp_path / "data", clock=clock, poll_interval=0.05)
    async with runtime:
        yield Ebike(runtime, clock)
