"""analytics: users created per day, and the per-minute aggregates of every metric, as queries.

Both are projections (``junction replay pipeline --projection users|metrics`` rebuilds them): users
from ``UserCreated`` (the day is when the user was created, UTC), metrics from processing's
``MinuteAggregated`` (the latest aggregate of a minute replaces the one before).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Float, Integer, String, func, select
from starlette.requests import Request

from junction.errors import BadRequest, NotFound
from junction.service import Service
from junction.uow import UnitOfWork
from pipeline import health
from pipeline.contracts.api import UNKNOWN_METRIC
from pipeline.contracts.events import MinuteAggregated, UserCreated

service = Service("analytics", worker=4)
health.declare(service)

users_per_day = service.table(
    "users_per_day",
    Column("day", String, primary_key=True),  # YYYY-MM-DD (UTC)
    Column("count", Integer, nullable=False),
)

metric_minutes = service.table(
    "metric_minutes",
    Column("metric", String, primary_key=True),
    Column("minute", BigInteger, primary_key=True),  # Unix seconds of the minute's start
    Column("count", Integer, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("mean", Float, nullable=False),
    Column("p95", Float, nullable=False),
)

# the handlers only write, so a burst is folded BATCH events per transaction
BATCH = 100
users_view = service.projection("users", tables=[users_per_day], batch=BATCH)
metrics_view = service.projection("metrics", tables=[metric_minutes], batch=BATCH)

MAX_MINUTES = 10_080  # minutes per answer at most (a week)


ONE_MORE = {"count": users_per_day.c.count + 1}  # one expression for every event: its statement stays prepared


@users_view.on("user", UserCreated)
async def count_user(event: UserCreated, uow: UnitOfWork) -> None:
    """One more user on the day it was created."""
    day = uow.event_time().astimezone(UTC).date().isoformat()
    uow.upsert(users_per_day, {"day": day, "count": 1}, keys=["day"], update=ONE_MORE)


@metrics_view.on("processing", MinuteAggregated)
async def keep_minute(event: MinuteAggregated, uow: UnitOfWork) -> None:
    """The minute's aggregate as it now stands."""
    figures = event.model_dump(exclude={"metric", "minute"})
    uow.upsert(metric_minutes, {"metric": event.metric, "minute": event.minute, **figures},
               keys=["metric", "minute"], update=figures)


def instant(text: str | None, name: str) -> float | None:
    """Unix seconds of an ISO 8601 query parameter (UTC when it names no offset); 400 when malformed."""
    if text is None or text == "":
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "+"))  # a '+' of an unencoded offset arrives as ' '
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 instant, e.g. 2026-01-01T00:00:00Z") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def iso_minute(seconds: int) -> str:
    """A minute's start as ISO 8601 UTC (``2026-01-01T00:01:00Z``)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@service.route("GET", "/analytics/metrics")
async def metrics(request: Request, uow: UnitOfWork) -> list[dict[str, Any]]:
    """``?metric=&from=&to=``: the minutes starting in [from, to), ordered; 404 for a metric never seen."""
    metric = request.query_params.get("metric", "")
    if not metric.strip():
        raise BadRequest("metric is required")
    start = instant(request.query_params.get("from"), "from")
    end = instant(request.query_params.get("to"), "to")
    if start is not None and end is not None and start > end:
        raise BadRequest("from is after to")
    if await uow.fetch_one(select(metric_minutes.c.minute).where(metric_minutes.c.metric == metric).limit(1)) is None:
        raise NotFound(UNKNOWN_METRIC)
    query = select(metric_minutes).where(metric_minutes.c.metric == metric)
    if start is not None:
        query = query.where(metric_minutes.c.minute >= start)
    if end is not None:
        query = query.where(metric_minutes.c.minute < end)
    rows = await uow.fetch_all(query.order_by(metric_minutes.c.minute).limit(MAX_MINUTES))
    return [{"metric": r["metric"], "minute": iso_minute(r["minute"]), "count": r["count"], "sum": r["sum"],
             "min": r["min"], "max": r["max"], "mean": r["mean"], "p95": r["p95"]} for r in rows]


@service.route("GET", "/analytics/metrics/names")
async def metric_names(uow: UnitOfWork) -> list[str]:
    """Every metric seen, by name."""
    rows = await uow.fetch_all(select(metric_minutes.c.metric).distinct().order_by(metric_minutes.c.metric))
    return [r["metric"] for r in rows]


@service.route("GET", "/analytics/users")
async def users(uow: UnitOfWork) -> dict[str, Any]:
    """``{"total", "perDay": [{"day", "count"}]}``, days in order."""
    rows = await uow.fetch_all(select(users_per_day).order_by(users_per_day.c.day))
    total = await uow.fetch_one(select(func.coalesce(func.sum(users_per_day.c.count), 0).label("total")))
    return {"total": int(total["total"]) if total is not None else 0,
            "perDay": [{"day": r["day"], "count": r["count"]} for r in rows]}
