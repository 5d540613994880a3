"""The shop's `junction bench` scenario, imported lazily: it builds the system it measures."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from junction.bench import BenchOptions


async def shop(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Orders/s and p99 of POST /api/order at increasing concurrency, next to the raw gRPC decrement."""
    from shop.bench import run

    return await run(console, options.quick)
