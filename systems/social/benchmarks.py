"""The social system's `junction bench` scenario, imported lazily: it builds the graph it measures."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from junction.bench import BenchOptions


async def social(console: Console, options: BenchOptions) -> dict[str, Any]:
    """A large graph through the event path, then the two queries' latency and the projection's replay speed."""
    from social.bench import run

    return await run(console, options)
