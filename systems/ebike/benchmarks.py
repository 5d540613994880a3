"""ebike's `junction bench` scenarios, imported lazily: they build the system they measure."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from junction.bench import BenchOptions


async def balance(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Credit-balance latency with 10, 1,000 and 100,000 records."""
    from ebike.bench import balance as run

    return await run(console, options.quick)


async def e2e(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Command accepted → projection updated (embedded, or through PostgreSQL and Kafka)."""
    from ebike.bench import e2e as run
    from ebike.bench import e2e_distributed

    if options.distributed:
        return await e2e_distributed(console, options.quick)
    return await run(console, options.quick)


async def gateway(console: Console, options: BenchOptions) -> dict[str, Any]:
    """GraphQL through the gateway next to the same calls without it."""
    from ebike.gateway.bench import gateway as run

    return await run(console, options.quick)
