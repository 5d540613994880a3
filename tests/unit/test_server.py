"""A scaled run keeps its platform clock across restarts."""

from __future__ import annotations

import time
from pathlib import Path

from junction.clock import RealClock, ScaledClock
from junction.server import clock_for


def test_scaled_clock_resumes_from_the_same_origin(tmp_path: Path) -> None:
    first = clock_for(tmp_path, 10)
    assert isinstance(first, ScaledClock)
    time.sleep(0.05)
    before_restart = first.timestamp()
    again = clock_for(tmp_path, 10)  # a restart: platform time goes on, never back
    assert again.timestamp() >= before_restart
    assert again._origin_wall == first._origin_wall
    other = clock_for(tmp_path, 20)  # another scale starts a new origin
    assert isinstance(other, ScaledClock) and other._origin_wall > first._origin_wall
    assert isinstance(clock_for(tmp_path, 1), RealClock)
