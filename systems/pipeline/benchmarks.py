"""The pipeline's `junction bench` scenario, imported lazily: it builds the system it measures."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from junction.bench import BenchOptions


async def pipeline(console: Console, options: BenchOptions) -> dict[str, Any]:
    """Constant-arrival-rate load on POST /users and POST /ingest, next to the page's table."""
    from pipeline.bench import run

    return await run(console, options.quick)
