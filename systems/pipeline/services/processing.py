"""processing: real-time ingestion of readings, and their per-metric, per-minute aggregates.

``POST /ingest`` takes a JSON array or NDJSON of readings ``{source, metric, value, timestamp}`` and
validates each one: a bad one is reported by its index (array position, or line number from 0) and
the good ones are kept. They commit as one batch row with a ``ReadingsAccepted`` event, and the answer
is 202: aggregation follows from the log. A consumer of the service's own log folds each batch into
the aggregates of the minutes it touches (count, sum, min and max kept as running figures, every value
kept in chunks for the nearest-rank p95) and publishes each changed minute as ``MinuteAggregated``
(mean and p95 with it): at once while a minute holds up to ``EAGER`` values, then at most once per
``COALESCE`` seconds, by a durable timer, so a busy minute is not re-sorted for every batch.

Limits: 400 when not one reading is valid, 413 over ``MAX_LINES`` readings or ``MAX_BYTES`` of body.
"""

from __future__ import annotations

import json
import math
from array import array
from collections import defaultdict
from typing import Any

from pydantic import ValidationError
from sqlalchemy import BigInteger, Column, Float, Integer, LargeBinary, String, Text, delete, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from junction.http import read_body
from junction.service import Service
from junction.uow import UnitOfWork
from pipeline import health
from pipeline.contracts.api import MAX_BYTES, MAX_LINES, Reading, minute_of
from pipeline.contracts.events import MinuteAggregated, ReadingsAccepted

service = Service("processing", worker=2)
health.declare(service)

batches = service.table(
    "batches",
    Column("id", String, primary_key=True),
    Column("readings", Text, nullable=False),  # JSON {metric: {minute: [values]}}; deleted once aggregated
)

minutes = service.table(
    "minutes",
    Column("metric", String, primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # Unix seconds of the minute's start
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("refresh_due", Float),  # platform time of the pending publish-minute timer, if any
)

chunks = service.table(  # every value of a minute, for an exact p95: one row per minute and batch
    "chunks",
    Column("metric", String, primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("batch_id", String, primary_key=True),
    Column("samples", LargeBinary, nullable=False),  # float64 values
)

# A minute of up to EAGER values is published with each batch that touches it; a larger one at most once
# per COALESCE seconds of platform time (a timer), since its p95 is recomputed over every value.
EAGER = 2_000
COALESCE = 1.0


class Refused(Exception):
    """The whole body is refused: its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse(raw: bytes) -> tuple[list[Reading], list[dict[str, Any]]]:
    """The valid readings and the rejected ones (``{"index", "error"}``) of a JSON array or NDJSON body."""
    text = raw.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as error:
            raise Refused(400, f"malformed JSON array: {error}") from None
        if not isinstance(items, list):
            raise Refused(400, "a JSON body is an array of readings")
        numbered: list[tuple[int, Any]] = list(enumerate(items))
        lines: list[tuple[int, str]] = []
    else:
        numbered = []
        lines = [(i, line) for i, line in enumerate(text.split("\n")) if line.strip()]
    if len(numbered) + len(lines) > MAX_LINES:
        raise Refused(413, f"more than {MAX_LINES} readings in one request")
    for index, line in lines:
        try:
            numbered.append((index, json.loads(line)))
        except ValueError:
            numbered.append((index, _Malformed()))
    readings: list[Reading] = []
    rejected: list[dict[str, Any]] = []
    for index, item in numbered:
        if isinstance(item, _Malformed):
            rejected.append({"index": index, "error": "malformed JSON"})
        elif not isinstance(item, dict):
            rejected.append({"index": index, "error": "a reading is a JSON object"})
        else:
            try:
                readings.append(Reading.model_validate(item))
            except ValidationError as invalid:
                rejected.append({"index": index, "error": _describe(invalid)})
    return readings, rejected


class _Malformed:
    """A line that is not JSON at all."""


def _describe(invalid: ValidationError) -> str:
    """One line per problem: ``value: must be a number``."""
    parts = []
    for error in invalid.errors():
        where = ".".join(str(p) for p in error["loc"]) or "reading"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def group(readings: list[Reading]) -> dict[str, dict[int, list[float]]]:
    """Values by metric and minute."""
    grouped: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for reading in readings:
        grouped[reading.metric][minute_of(reading.timestamp)].append(reading.value)
    return grouped


@service.route("POST", "/ingest")
async def ingest(request: Request, uow: UnitOfWork) -> Response:
    """202 ``{"accepted", "rejected"}`` once the valid readings are committed; 400 when none is; 413 when too big."""
    parsed = getattr(request.state, "parsed", None)  # the handler may run again after a lost race
    if parsed is None:
        raw = await read_body(request, MAX_BYTES)
        if raw is None:
            return JSONResponse({"error": f"request body over {MAX_BYTES} bytes"}, status_code=413)
        try:
            parsed = request.state.parsed = parse(raw)
        except Refused as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status)
    readings, rejected = parsed
    if not readings:
        return JSONResponse({"error": "no valid readings", "accepted": 0, "rejected": rejected}, status_code=400)
    batch_id = uow.new_id()
    uow.execute(batches.insert().values(id=batch_id, readings=json.dumps(group(readings), separators=(",", ":"))))
    uow.append(f"batch-{batch_id}", ReadingsAccepted(batch_id=batch_id, count=len(readings)), expected_version=0)
    return JSONResponse({"accepted": len(readings), "rejected": rejected}, status_code=202)


def p95(values: list[float]) -> float:
    """The nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


async def _samples(uow: UnitOfWork, metric: str, minute: int) -> list[float]:
    """Every value of a minute, from its chunks."""
    values = array("d")
    for row in await uow.fetch_all(select(chunks.c.samples).where(chunks.c.metric == metric,
                                                                  chunks.c.minute == minute)):
        values.frombytes(row["samples"])
    return values.tolist()


def _published(metric: str, minute: int, figures: dict[str, Any], p95_value: float) -> MinuteAggregated:
    return MinuteAggregated(metric=metric, minute=minute, count=figures["count"], sum=figures["sum"],
                            min=figures["min"], max=figures["max"], mean=figures["sum"] / figures["count"],
                            p95=p95_value)


@service.on("processing", ReadingsAccepted, group="aggregate")
async def aggregate(event: ReadingsAccepted, uow: UnitOfWork) -> None:
    """Fold a batch into its minutes (this consumer alone writes them) and publish them, now or coalesced."""
    row = await uow.fetch_one(select(batches.c.readings).where(batches.c.id == event.batch_id))
    if row is None:
        return  # already folded (the batch row goes with its aggregation)
    grouped: dict[str, dict[str, list[float]]] = json.loads(row["readings"])
    for metric, by_minute in grouped.items():
        for minute_text, values in by_minute.items():
            minute = int(minute_text)
            stored = await uow.fetch_one(select(minutes).where(minutes.c.metric == metric,
                                                               minutes.c.minute == minute))
            figures = {"count": len(values), "sum": math.fsum(values), "min": min(values), "max": max(values)}
            if stored is not None:
                figures = {"count": stored["count"] + figures["count"], "sum": stored["sum"] + figures["sum"],
                           "min": min(stored["min"], figures["min"]), "max": max(stored["max"], figures["max"])}
            uow.execute(chunks.insert().values(metric=metric, minute=minute, batch_id=event.batch_id,
                                               samples=array("d", values).tobytes()))
            refresh = stored["refresh_due"] if stored is not None else None
            if figures["count"] <= EAGER:  # small: exact and at once
                every = [*await _samples(uow, metric, minute), *values]
                uow.append(f"minute-{metric}-{minute}", _published(metric, minute, figures, p95(every)))
            elif refresh is None:  # large: at most once per COALESCE seconds, by a timer
                refresh = uow.now().timestamp() + COALESCE
                uow.schedule(refresh, "publish-minute", {"metric": metric, "minute": minute},
                             timer_id=f"minute:{metric}:{minute}")
            uow.upsert(minutes, {"metric": metric, "minute": minute, **figures, "refresh_due": refresh},
                       keys=["metric", "minute"], update={**figures, "refresh_due": refresh})
    uow.execute(delete(batches).where(batches.c.id == event.batch_id))


@service.timer("publish-minute")
async def publish_minute(payload: dict[str, Any], uow: UnitOfWork) -> None:
    """Publish a large minute's aggregate as it stands, its p95 over every value."""
    metric, minute = str(payload["metric"]), int(payload["minute"])
    stored = await uow.fetch_one(select(minutes).where(minutes.c.metric == metric, minutes.c.minute == minute))
    if stored is None:
        return
    figures = {name: stored[name] for name in ("count", "sum", "min", "max")}
    uow.append(f"minute-{metric}-{minute}", _published(metric, minute, figures, p95(await _samples(uow, metric,
                                                                                                     minute))))
    uow.execute(minutes.update().where(minutes.c.metric == metric, minutes.c.minute == minute)
                .values(refresh_due=None))
