"""The spec's acceptance scenarios G1-G5 through the gateway, embedded and distributed, plus ingestion.

On Kafka the user's event is checked on topic ``user-events`` itself (key and value byte for byte);
embedded, where no broker runs, in the user service's log (the outbox) with the value the export writes.
"""

from __future__ import annotations

from typing import Any

from pipeline.contracts.events import USER_CREATED_JSON, UserCreated
from pipeline.tests.conftest import ALICE, Pipeline

ALICE_VALUE = b'{"event":"user.created","user_id":1,"email":"alice@example.com"}'


async def user_events(pipeline: Pipeline) -> list[tuple[bytes | None, bytes | None]]:
    """What went (distributed) or goes (embedded: the log, encoded as the export will) to ``user-events``."""
    if pipeline.distributed is not None:
        return await pipeline.user_records()
    log = await pipeline.runtime.service("user").store.read_log(0, 10_000)
    return [(e.stream.encode(), USER_CREATED_JSON.encode(e.event.payload())) for e in log
            if isinstance(e.event, UserCreated)]


async def test_g1_to_g4_a_user_is_created_published_once_welcomed_once_and_counted(pipeline: Pipeline) -> None:
    # G1
    assert await pipeline.create_user(**ALICE) == (201, {"id": 1, **ALICE})
    # G2: a body that does not bind, nothing published
    status, body = await pipeline.request("POST", "/users", raw=b'{"username":')
    assert status == 400 and "error" in body
    status, body = await pipeline.request("POST", "/users", {"username": "bob"})
    assert status == 400 and "error" in body
    # G3: the same user again
    assert await pipeline.create_user(**ALICE) == (409, {"error": "user already exists"})
    assert (await pipeline.create_user("alice", "other@example.com"))[0] == 409
    assert (await pipeline.create_user("alice2", "alice@example.com"))[0] == 409
    await pipeline.settle()
    assert await user_events(pipeline) == [(b"user-1", ALICE_VALUE)]
    # G4: one welcome, one user counted
    status, sent = await pipeline.request("GET", "/notifications?email=alice@example.com")
    assert status == 200 and len(sent) == 1
    assert sent[0]["userId"] == 1 and sent[0]["kind"] == "welcome" and sent[0]["email"] == "alice@example.com"
    assert sent[0]["sentAt"] is not None
    mails = await pipeline.mails()
    assert [m["To"][0]["Address"] for m in mails] == ["alice@example.com"]
    status, users = await pipeline.request("GET", "/analytics/users")
    assert status == 200 and users["total"] == 1
    assert users["perDay"] == [{"day": pipeline.clock.now().date().isoformat(), "count": 1}]
    # a second user: a later id (the refused duplicates used some, as the page's serial column does), its own
    # event, its own mail
    status, bob = await pipeline.create_user("bob", "bob@example.com")
    assert status == 201 and bob["id"] > 1 and (bob["username"], bob["email"]) == ("bob", "bob@example.com")
    await pipeline.settle()
    assert [key for key, _ in await user_events(pipeline)] == [b"user-1", f"user-{bob['id']}".encode()]
    assert len(await pipeline.mails()) == 2
    assert (await pipeline.request("GET", "/analytics/users"))[1]["total"] == 2
    assert (await pipeline.request("GET", f"/users/{bob['id']}"))[1] == bob


async def test_g5_health_reports_each_dependency_without_a_key(pipeline: Pipeline) -> None:
    answer = await pipeline.http.get("/health", headers={"x-api-key": ""})
    health = answer.json()
    assert answer.status_code == 200 and health["status"] == "healthy" and health["database"] == "healthy"
    assert health["kafka"] == ("healthy" if pipeline.distributed else "disabled")
    assert health["timestamp"] == int(pipeline.clock.timestamp())
    assert set(health["services"]) == {"user", "processing", "notification", "analytics"}
    for service in ("user", "processing", "notification", "analytics"):  # each service's own /health
        own = (await pipeline.runtime.client(service).get("/health"))
        assert own.json()["database"] == "healthy" and own.json()["service"] == service
    metrics = await pipeline.http.get("/metrics")
    assert metrics.status_code == 200 and 'junction_log_head{service="user"}' in metrics.text


READINGS: list[dict[str, Any]] = [
    {"source": "s1", "metric": "hr", "value": 60, "timestamp": "2026-01-01T00:00:05Z"},
    {"source": "s1", "metric": "hr", "value": "fast", "timestamp": "2026-01-01T00:00:15Z"},
    {"source": "s2", "metric": "hr", "value": 80, "timestamp": "2026-01-01T00:00:25Z"},
    {"source": "s2", "metric": "hr", "value": 70, "timestamp": "2026-01-01T00:01:05Z"},
]


async def test_ingested_readings_are_aggregated_per_metric_and_minute(pipeline: Pipeline) -> None:
    assert await pipeline.ingest(READINGS, ndjson=True) == (202, {"accepted": 3, "rejected": [
        {"index": 1, "error": "value: must be a number"}]})
    more = [{"source": "s3", "metric": "hr", "value": float(v), "timestamp": f"2026-01-01T00:00:{v:02d}+00:00"}
            for v in range(30, 50)]
    more.append({"source": "s3", "metric": "temp", "value": -3.5, "timestamp": 1767225600})  # Unix seconds
    assert await pipeline.ingest(more) == (202, {"accepted": 21, "rejected": []})
    await pipeline.settle()
    status, rows = await pipeline.request(
        "GET", "/analytics/metrics?metric=hr&from=2026-01-01T00:00:00Z&to=2026-01-01T00:02:00Z")
    assert status == 200
    first = sorted([60.0, 80.0, *map(float, range(30, 50))])
    assert rows == [
        {"metric": "hr", "minute": "2026-01-01T00:00:00Z", "count": 22, "sum": sum(first), "min": 30.0,
         "max": 80.0, "mean": sum(first) / 22, "p95": first[20]},  # nearest rank: ceil(0.95 x 22) = 21st
        {"metric": "hr", "minute": "2026-01-01T00:01:00Z", "count": 1, "sum": 70.0, "min": 70.0, "max": 70.0,
         "mean": 70.0, "p95": 70.0},
    ]
    # the range is [from, to): the second minute alone, then none of a known metric, then an unknown metric
    assert [r["minute"] for r in (await pipeline.request(
        "GET", "/analytics/metrics?metric=hr&from=2026-01-01T00:01:00Z"))[1]] == ["2026-01-01T00:01:00Z"]
    assert await pipeline.request("GET", "/analytics/metrics?metric=hr&to=2026-01-01T00:00:00Z") == (200, [])
    assert await pipeline.request("GET", "/analytics/metrics?metric=pressure") == (404, {"error": "unknown metric"})
    assert (await pipeline.request("GET", "/analytics/metrics?metric=temp"))[1][0]["sum"] == -3.5
    assert (await pipeline.request("GET", "/analytics/metrics/names"))[1] == ["hr", "temp"]
