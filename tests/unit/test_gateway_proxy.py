"""The REST proxy edge on a toy system and the virtual clock: forwarding byte for byte, headers by allow-list,
fallback, retries, breaker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from junction.clock import VirtualClock
from junction.gateway.proxy import ProxyEdge, ProxyRoute
from junction.gateway.resilience import BreakerState, Guard
from junction.runtime import Runtime
from junction.transport import ServiceClient
from tests.unit import toy_proxy
from tests.unit.toy_proxy import FALLBACK, calls
from tests.unit.virtual import drive


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    calls.clear()
    rt = Runtime(toy_proxy.system(), tmp_path, clock=VirtualClock())
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def gateway(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://gateway") as client:
        yield client


def guard(prefix: str = "/api/items") -> Guard:
    return toy_proxy.edges[-1].guards[prefix]


async def send(runtime: Runtime, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A request through the gateway, the virtual clock moved through any backoff."""
    assert isinstance(runtime.clock, VirtualClock)
    return await drive(runtime.clock, client.request(method, path, **kwargs))


@pytest.mark.parametrize(("method", "path", "body", "content_type"), [
    ("GET", "/api/items", b'["SKU001","SKU002","NOPE"]', "application/json"),  # a GET with a JSON body
    ("GET", "/api/items/user123?status=200&type=application/json", b"", None),
    ("POST", "/api/items?status=201&type=text/plain;charset=utf-8", b'{"skuCode":"A","quantity":1}',
     "application/json"),
    ("POST", "/api/items?status=409&type=text/plain;charset=utf-8", b"not json at all", "text/plain"),
    ("PUT", "/api/items/a%20b?q=%C3%A9&q=2", bytes(range(256)), "application/octet-stream"),
    ("PATCH", "/api/items/x", b"{}", "application/merge-patch+json"),
    ("DELETE", "/api/items/x?status=204&type=text/plain", b"", None),
    ("GET", "/api/items/no/such/path", b"", None),  # the service's own 404 goes back as it is
])
async def test_forwards_method_path_query_body_and_type_and_answers_byte_for_byte(
        runtime: Runtime, gateway: httpx.AsyncClient, method: str, path: str, body: bytes,
        content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    through = await send(runtime, gateway, method, path, content=body, headers=headers)
    direct = await runtime.client("echo").request(method, path, content=body, headers=headers)
    assert (through.status_code, through.content) == (direct.status_code, direct.content)
    assert through.headers.get("content-type") == direct.headers.get("content-type")
    if direct.status_code < 300:
        raw_path = path.partition("?")[0]
        assert through.content.startswith(f"{method}|".encode())
        assert through.content.endswith(b"|" + body)
        assert f"|{raw_path.replace('%20', ' ')}|".encode() in through.content  # decoded once, by the service
        assert sum(calls.values()) == 2  # once through the gateway, once directly: no retry of a clean answer


async def test_a_stripping_route_forwards_the_path_without_its_prefix(
        runtime: Runtime, gateway: httpx.AsyncClient) -> None:
    answer = await send(runtime, gateway, "POST", "/echo/api/items/a%20b?x=1", content=b"hi",
                        headers={"content-type": "text/plain"})
    assert (answer.status_code, answer.content) == (200, b"POST|/api/items/a b|x=1|text/plain|hi")
    assert (await send(runtime, gateway, "GET", "/echo")).status_code == 404  # "/" is no path of echo's


class Refusing:
    """An unreachable service: every call fails to connect; counts them by method."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls[scope["method"]] = self.calls.get(scope["method"], 0) + 1
        raise httpx.ConnectError("connection refused")


@pytest.mark.parametrize(("method", "attempts"), [("GET", 4), ("PUT", 4), ("DELETE", 4), ("POST", 1), ("PATCH", 1)])
async def test_an_unreachable_service_gets_the_fallback_for_every_method_retried_for_idempotent_ones(
        runtime: Runtime, gateway: httpx.AsyncClient, method: str, attempts: int) -> None:
    down = Refusing()
    runtime.transport.add_app("echo", down)
    clock = runtime.clock
    started = clock.timestamp()
    answer = await send(runtime, gateway, method, "/api/items", content=b"[1]",
                        headers={"content-type": "application/json"})
    assert (answer.status_code, answer.text) == (503, FALLBACK)
    assert answer.headers["content-type"].startswith("text/plain")
    assert down.calls == {method: attempts}
    waited = clock.timestamp() - started
    assert (0.35 * 0.75 <= waited <= 0.35 * 1.25) if attempts > 1 else waited == 0  # 50 + 100 + 200 ms, ±25 %


async def test_a_failing_answer_is_retried_then_falls_back(runtime: Runtime, gateway: httpx.AsyncClient) -> None:
    answer = await send(runtime, gateway, "GET", "/api/items?status=502")
    assert (answer.status_code, answer.text) == (503, FALLBACK)
    assert calls["GET"] == 4
    answer = await send(runtime, gateway, "POST", "/api/items?status=500")
    assert (answer.status_code, answer.text) == (503, FALLBACK)
    assert calls["POST"] == 1


async def test_the_breaker_opens_at_half_failures_in_ten_calls_and_closes_after_the_wait_and_three_successes(
        runtime: Runtime, gateway: httpx.AsyncClient) -> None:
    for n in range(10):  # alternate: 5 of 10 fail (POST: no retries, one call each)
        status = 503 if n % 2 else 201
        answer = await send(runtime, gateway, "POST", f"/api/items?status={status}")
        assert answer.status_code == (503 if n % 2 else 201)
    items = guard()
    assert items.breaker is not None and items.breaker.state is BreakerState.OPEN
    before = sum(calls.values())
    for method in ("GET", "POST", "PUT", "DELETE"):
        answer = await send(runtime, gateway, method, "/api/items")
        assert (answer.status_code, answer.text) == (503, FALLBACK)
    assert sum(calls.values()) == before  # open: the service is not called at all
    slow = guard("/api/slow").breaker
    assert slow is not None and slow.state is BreakerState.CLOSED  # each route has its own breaker

    await runtime.clock.advance(5)  # type: ignore[attr-defined]
    assert items.breaker.state is BreakerState.HALF_OPEN
    for _ in range(3):
        assert (await send(runtime, gateway, "GET", "/api/items")).status_code == 200
    assert items.breaker.state is BreakerState.CLOSED
    assert sum(calls.values()) == before + 3


async def test_a_call_over_the_time_limit_gets_the_fallback(runtime: Runtime, gateway: httpx.AsyncClient) -> None:
    clock = runtime.clock
    assert isinstance(clock, VirtualClock)
    call = asyncio.ensure_future(gateway.get("/api/slow"))
    while not calls["slow"]:
        await asyncio.sleep(0.001)
    await clock.advance(9.9)
    assert not call.done()
    await clock.advance(0.1)
    answer = await call
    assert (answer.status_code, answer.text) == (503, FALLBACK)
    assert calls["slow"] == 1  # a timed-out call is not retried: the limit covers the retries


async def test_a_body_over_the_limit_is_refused_at_the_edge(runtime: Runtime) -> None:
    edge = ProxyEdge(runtime, [ProxyRoute("/api/items", "echo")], max_body=8)
    app = Starlette(routes=edge.starlette_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        assert (await client.post("/api/items", content=b"12345678")).status_code == 200
        refused = await client.post("/api/items", content=b"123456789")
    assert (refused.status_code, refused.text) == (413, "Request body too large")
    assert calls["POST"] == 1


OWN = {"host", "content-length", "accept-encoding", "connection", "user-agent"}  # what httpx adds of its own


@pytest.fixture(params=["in-process", "http"])
def carried(request: pytest.FixtureRequest, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> str:
    """Reach echo in-process (the ASGI caller) or through httpx, as a service in another process is reached."""
    if request.param == "http":
        over_httpx = ServiceClient("echo", runtime.transport.client("echo").http)  # no in-process caller
        monkeypatch.setitem(runtime.transport._clients, "echo", over_httpx)
    return str(request.param)


async def test_allowed_headers_are_forwarded_both_ways_and_others_are_not(
        runtime: Runtime, gateway: httpx.AsyncClient, carried: str) -> None:
    answer = await send(runtime, gateway, "GET", "/api/headers", headers=[
        ("authorization", "Bearer abc"), ("cookie", "jwt=abc; theme=dark"), ("accept", "text/html"),
        ("x-tenant", "t1"), ("x-forwarded-for", "10.0.0.1")])
    assert answer.status_code == 201
    sent = [(name, value) for name, value in answer.json() if name not in OWN]
    assert sorted(sent) == [("accept", "text/html"), ("authorization", "Bearer abc"),
                            ("cookie", "jwt=abc; theme=dark")]
    assert answer.headers["location"] == "/api/items/1"
    assert answer.headers["content-type"] == "application/json"
    cookies = answer.headers.get_list("set-cookie")
    assert [c.split(";")[0] for c in cookies] == ["jwt=token", "theme=dark"]  # each cookie, apart
    assert "httponly" in cookies[0].lower()
    assert "x-internal" not in answer.headers


async def test_a_route_forwards_only_its_own_allow_lists(
        runtime: Runtime, gateway: httpx.AsyncClient, carried: str) -> None:
    answer = await send(runtime, gateway, "GET", "/narrow/api/headers", headers=[
        ("authorization", "Bearer abc"), ("X-Tenant", "t1"), ("content-type", "text/plain"), ("accept", "text/html")])
    sent = [(name, value) for name, value in answer.json() if name not in OWN]
    assert ("accept", "text/html") not in sent  # (over HTTP, httpx sends an "accept: */*" of its own)
    assert sorted(p for p in sent if p[0] != "accept") == [("content-type", "text/plain"), ("x-tenant", "t1")]
    assert (answer.headers["x-internal"], answer.headers.get("location")) == ("secret", None)
    assert answer.headers.get_list("set-cookie") == []


async def test_the_catch_all_route_forwards_every_path(runtime: Runtime) -> None:
    edge = ProxyEdge(runtime, [ProxyRoute("/", "echo")])
    app = Starlette(routes=edge.starlette_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        assert (await client.post("/api/items/a?x=1", content=b"hi")).content == b"POST|/api/items/a|x=1|-|hi"
        assert (await client.get("/")).status_code == 404  # reached echo, which has no "/"
    assert calls["POST"] == 1


def test_routes_are_checked() -> None:
    with pytest.raises(ValueError):
        ProxyRoute("api/items", "echo")
    with pytest.raises(ValueError):
        ProxyRoute("/api/items/", "echo")
    with pytest.raises(ValueError):
        ProxyRoute("/api/items", "echo", request_headers=frozenset({"Host"}))
    with pytest.raises(ValueError):
        ProxyRoute("/api/items", "echo", answer_headers=frozenset({"content-length"}))
    assert ProxyRoute("/", "echo").prefix == "/"
