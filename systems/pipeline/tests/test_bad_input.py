"""Bad input at the edge: each answered with its documented status and message, good lines kept, nothing
half-written, never a 500 (embedded; the acceptance suite covers both topologies)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.contracts.api import MAX_BYTES, MAX_LINES
from pipeline.services.processing import COALESCE
from pipeline.tests.conftest import ALICE, Pipeline


def reading(value: Any = 1.0, **changes: Any) -> dict[str, Any]:
    """A valid reading, with ``changes``."""
    return {"source": "s", "metric": "m", "value": value, "timestamp": "2026-01-01T00:00:00Z", **changes}


@pytest.mark.parametrize("raw", [b'{"username":', b"", b"null", b"[]", b'"alice"', b'{"username": 1, "email": "a@b.c"}',
                                 b'{"username": "a"}', b'{"username": "", "email": "a@b.c"}',
                                 b'{"username": "a", "email": "not-an-address"}', b"\xff\xfe"])
async def test_a_user_body_that_does_not_bind_is_400_and_creates_nothing(pipeline: Pipeline, raw: bytes) -> None:
    status, body = await pipeline.request("POST", "/users", raw=raw)
    assert status == 400 and isinstance(body["error"], str)
    await pipeline.settle()
    assert await pipeline.runtime.service("user").store.head() == 0


async def test_duplicates_are_409_and_nothing_is_published_twice(pipeline: Pipeline) -> None:
    assert (await pipeline.create_user(**ALICE))[0] == 201
    for _ in range(3):
        assert await pipeline.create_user(**ALICE) == (409, {"error": "user already exists"})
    await pipeline.settle()
    assert await pipeline.runtime.service("user").store.head() == 1
    assert len(await pipeline.mails()) == 1


async def test_concurrent_creates_of_one_user_make_exactly_one(pipeline: Pipeline) -> None:
    import asyncio

    answers = await asyncio.gather(*(pipeline.create_user("carol", "carol@example.com") for _ in range(8)))
    assert sorted(status for status, _ in answers) == [201] + [409] * 7
    await pipeline.settle()
    assert await pipeline.runtime.service("user").store.head() == 1


@pytest.mark.parametrize(("line", "error"), [
    ({**reading(), "value": "12"}, "value: must be a number"),
    ({**reading(), "value": True}, "value: must be a number"),
    ({**reading(), "value": None}, "value: must be a number"),
    ({**reading(), "source": ""}, "source: must not be blank"),
    ({**reading(), "metric": 5}, "metric: Input should be a valid string"),
    ({**reading(), "timestamp": "yesterday"}, "timestamp: Input should be a valid datetime"),
    ({**reading(), "timestamp": "2026-01-01T00:00:00"}, "timestamp: Input should have timezone info"),
    ({**reading(), "timestamp": "1767225600"}, "timestamp: must be an ISO 8601 string (or Unix seconds as a number)"),
    ({k: v for k, v in reading().items() if k != "metric"}, "metric: Field required"),
    ([1, 2], "a reading is a JSON object"),
])
async def test_a_bad_reading_is_rejected_by_index_and_the_good_ones_kept(
        pipeline: Pipeline, line: Any, error: str) -> None:
    for ndjson in (False, True):
        status, body = await pipeline.ingest([reading(1.0), line, reading(3.0)], ndjson=ndjson)
        assert status == 202 and body["accepted"] == 2
        assert [r["index"] for r in body["rejected"]] == [1]
        assert body["rejected"][0]["error"].startswith(error)
    await pipeline.settle()
    status, rows = await pipeline.request("GET", "/analytics/metrics?metric=m")
    assert status == 200 and rows[0]["count"] == 4 and rows[0]["sum"] == 8.0


async def test_malformed_ndjson_lines_are_reported_by_line_number(pipeline: Pipeline) -> None:
    raw = "\n".join([json.dumps(reading(1.0)), "{not json", "", json.dumps(reading(2.0)), "NaN", "[1,"]).encode()
    status, body = await pipeline.ingest(raw=raw, ndjson=True)
    assert status == 202 and body["accepted"] == 2
    assert body["rejected"] == [{"index": 1, "error": "malformed JSON"},
                                {"index": 4, "error": "a reading is a JSON object"},
                                {"index": 5, "error": "malformed JSON"}]
    status, body = await pipeline.ingest(raw=json.dumps(reading(float("nan"))).encode(), ndjson=True)
    assert status == 400 and body["rejected"] == [{"index": 0, "error": "value: must be a finite number"}]


@pytest.mark.parametrize("raw", [b"garbage", b"", b"\n\n", b"[", b"[1, 2", b'{"a": 1}', b"[]", b"\xff\xfe\x00"])
async def test_a_body_where_nothing_parses_is_400(pipeline: Pipeline, raw: bytes) -> None:
    status, body = await pipeline.ingest(raw=raw)
    assert status == 400 and isinstance(body["error"], str)
    await pipeline.settle()
    assert await pipeline.runtime.service("processing").store.head() == 0


async def test_too_many_lines_or_bytes_is_413_and_the_limit_itself_is_fine(pipeline: Pipeline) -> None:
    line = json.dumps(reading(1.0)) + "\n"
    assert (await pipeline.ingest(raw=(line * MAX_LINES).encode(), ndjson=True)) == (
        202, {"accepted": MAX_LINES, "rejected": []})
    status, body = await pipeline.ingest(raw=(line * (MAX_LINES + 1)).encode(), ndjson=True)
    assert status == 413 and "10000" in body["error"]
    status, body = await pipeline.ingest([reading(1.0)] * (MAX_LINES + 1))
    assert status == 413
    padded = json.dumps({**reading(1.0), "pad": "x" * MAX_BYTES}).encode()
    status, body = await pipeline.ingest(raw=padded, ndjson=True)
    assert status == 413 and "bytes" in body["error"]
    await pipeline.clock.advance(COALESCE)  # a minute this large is published by its timer
    status, rows = await pipeline.request("GET", "/analytics/metrics?metric=m")
    assert rows[0]["count"] == MAX_LINES  # only the batch at the limit was kept


@pytest.mark.parametrize(("query", "status"), [
    ("", 400), ("?metric=", 400), ("?metric=nope", 404), ("?metric=m&from=yesterday", 400),
    ("?metric=m&to=2026-13-01", 400), ("?metric=m&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400),
])
async def test_bad_analytics_queries_have_their_status(pipeline: Pipeline, query: str, status: int) -> None:
    assert (await pipeline.ingest([reading(1.0)]))[0] == 202
    await pipeline.settle()
    answer, body = await pipeline.request("GET", f"/analytics/metrics{query}")
    assert answer == status and isinstance(body["error"], str)


@pytest.mark.parametrize(("method", "path"), [("POST", "/users"), ("POST", "/ingest"), ("GET", "/analytics/users"),
                                              ("GET", "/analytics/metrics?metric=m"), ("GET", "/notifications"),
                                              ("GET", "/dashboard"), ("GET", "/dashboard/events")])
async def test_every_route_but_health_needs_a_key_or_a_token(pipeline: Pipeline, method: str, path: str) -> None:
    for headers in ({"x-api-key": ""}, {"x-api-key": "pk_forged"}, {"x-api-key": "", "authorization": "Bearer x.y.z"}):
        answer = await pipeline.http.request(method, path, headers=headers, content=b"{}")
        assert (answer.status_code, answer.json()) == (401, {"error": "unauthorized"})


async def test_unknown_paths_and_methods_are_json_errors(pipeline: Pipeline) -> None:
    assert (await pipeline.request("GET", "/users/nobody"))[0] == 404
    assert (await pipeline.request("DELETE", "/users"))[0] == 405
    assert (await pipeline.request("GET", "/ingest"))[0] == 405


async def test_only_the_routed_prefixes_reach_the_services(pipeline: Pipeline) -> None:
    status, body = await pipeline.request("GET", "/usersx")
    assert (status, body) == (404, {"error": "not found"})
    assert (await pipeline.request("GET", "/nothing/here"))[0] == 404
