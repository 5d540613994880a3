"""The academy's `junction bench` scenario, imported lazily: it builds the system it measures."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from junction.bench import BenchOptions


async def academy(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Chat fan-out latency with 200 viewers in one room, and reminders delivered per second to 10,000."""
    from academy.bench import run

    return await run(console, options.quick)
