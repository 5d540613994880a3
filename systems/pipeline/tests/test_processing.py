"""Aggregation in processing: exact figures whatever the batch sizes, a busy minute published by its timer
at most once per ``COALESCE`` seconds of platform time, each batch folded once."""

from __future__ import annotations

import json
import math
from typing import Any

from pipeline.contracts.events import MinuteAggregated
from pipeline.services.processing import COALESCE, EAGER, p95
from pipeline.tests.conftest import Pipeline


def lines(values: list[float], second: int = 0, metric: str = "load") -> bytes:
    """NDJSON readings of ``metric`` in the first minute of 2026."""
    return "\n".join(json.dumps({"source": "s", "metric": metric, "value": v,
                                 "timestamp": f"2026-01-01T00:00:{second:02d}Z"}) for v in values).encode()


async def published(pipeline: Pipeline, metric: str = "load") -> list[MinuteAggregated]:
    """The aggregates processing has published for ``metric``, in order."""
    log = await pipeline.runtime.service("processing").store.read_log(0, 100_000)
    return [e.event for e in log if isinstance(e.event, MinuteAggregated) and e.event.metric == metric]


async def figures(pipeline: Pipeline, metric: str = "load") -> dict[str, Any]:
    """The analytics answer for the first minute of 2026."""
    status, rows = await pipeline.request("GET", f"/analytics/metrics?metric={metric}")
    assert status == 200 and len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


def test_p95_is_the_nearest_rank() -> None:
    assert p95([5.0]) == 5.0
    assert p95([float(v) for v in range(1, 101)]) == 95.0
    assert p95([float(v) for v in range(1, 21)]) == 19.0  # ceil(0.95 x 20) = 19
    assert p95([3.0, 1.0, 2.0]) == 3.0


async def test_a_busy_minute_is_published_by_its_timer_exactly(pipeline: Pipeline) -> None:
    small = [float(v) for v in range(100)]
    assert (await pipeline.ingest(raw=lines(small), ndjson=True))[0] == 202
    await pipeline.settle()
    assert len(await published(pipeline)) == 1  # small: at once
    big = [float(v) for v in range(100, 100 + EAGER)]
    for start in range(0, len(big), 500):  # four batches in the same second of platform time
        assert (await pipeline.ingest(raw=lines(big[start:start + 500], second=30), ndjson=True))[0] == 202
    await pipeline.settle()
    every = small + big
    assert len(await published(pipeline)) == 4  # up to EAGER values: with each batch; then the timer waits
    await pipeline.clock.advance(COALESCE)
    assert len(await published(pipeline)) == 5  # one publish for the rest, however many batches
    assert await figures(pipeline) == {
        "metric": "load", "minute": "2026-01-01T00:00:00Z", "count": len(every), "sum": math.fsum(every),
        "min": 0.0, "max": float(99 + EAGER), "mean": math.fsum(every) / len(every), "p95": p95(every)}
    assert (await pipeline.ingest(raw=lines([1e6]), ndjson=True))[0] == 202  # a later batch re-arms it
    await pipeline.settle()
    assert len(await published(pipeline)) == 5
    await pipeline.clock.advance(COALESCE)
    assert (await figures(pipeline))["max"] == 1e6 and len(await published(pipeline)) == 6


async def test_batches_are_folded_once_and_minutes_apart(pipeline: Pipeline) -> None:
    raw = "\n".join(json.dumps({"source": "s", "metric": "t", "value": m, "timestamp": f"2026-01-01T00:{m:02d}:00Z"})
                    for m in range(5)).encode()
    assert (await pipeline.ingest(raw=raw, ndjson=True))[0] == 202
    assert (await pipeline.ingest(raw=raw, ndjson=True))[0] == 202
    await pipeline.settle()
    _, rows = await pipeline.request("GET", "/analytics/metrics?metric=t")
    assert [(r["minute"][11:16], r["count"], r["sum"]) for r in rows] == [
        (f"00:{m:02d}", 2, 2.0 * m) for m in range(5)]
    store = pipeline.runtime.service("processing").store
    assert await store.head() == 2 + 10  # two batches, ten aggregates: each batch once
