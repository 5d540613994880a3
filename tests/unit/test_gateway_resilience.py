"""Per-upstream resilience on a virtual clock: breaker, rate limiter, timeout/retry/fallback, Upstreams."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from junction.clock import VirtualClock
from junction.gateway.resilience import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    Policy,
    RateLimited,
    RateLimiter,
    Upstream,
)
from junction.gateway.upstreams import Upstreams, is_failure, is_retryable
from junction.transport import Transport, UpstreamError


class Flaky:
    """An action failing ``failures`` times with ``error`` before answering "ok"; counts calls."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or OSError("connection refused")
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


async def test_breaker_opens_after_the_threshold_and_half_opens_after_the_timeout() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, failure_threshold=2, reset_timeout=30)
    failing = Flaky(100)
    for _ in range(2):
        with pytest.raises(OSError):
            await breaker.call(failing)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        await breaker.call(failing)
    assert failing.calls == 2  # failing fast: not called
    await clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(OSError):  # the trial fails: open again, for another reset_timeout
        await breaker.call(failing)
    assert breaker.state is BreakerState.OPEN
    await clock.advance(30)
    assert await breaker.call(Flaky(0)) == "ok"
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0


async def test_half_open_lets_one_trial_through() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, failure_threshold=1, reset_timeout=5)
    with pytest.raises(OSError):
        await breaker.call(Flaky(1))
    await clock.advance(5)
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "ok"

    trial = asyncio.create_task(breaker.call(slow))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await breaker.call(slow)
    gate.set()
    assert await trial == "ok" and breaker.state is BreakerState.CLOSED


async def test_refusals_do_not_count_against_the_upstream() -> None:
    breaker = CircuitBreaker(VirtualClock(), failure_threshold=1, is_failure=is_failure)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await breaker.call(Flaky(1, UpstreamError("vehicle not found", status=404)))
    assert breaker.state is BreakerState.CLOSED
    with pytest.raises(UpstreamError):
        await breaker.call(Flaky(1, UpstreamError("internal server error", status=500)))
    assert breaker.state is BreakerState.OPEN


async def test_rate_limiter_refills_on_the_platform_clock() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(clock, rate=0.5, burst=2)
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimited) as limited:
        limiter.take("k")
    assert limited.value.retry_after == pytest.approx(2.0)
    limiter.take("other")  # buckets are per key
    await clock.advance(2)
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")
    await clock.advance(100)  # never more than the burst
    limiter.take("k")
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")


async def test_rate_limiter_memory_is_bounded() -> None:
    clock = VirtualClock()
    limiter = RateLimiter(clock, rate=1, burst=1, max_keys=10)
    for i in range(10):
        limiter.take(f"k{i}")
    await clock.advance(1)  # every bucket is full again: they carry no information
    limiter.take("new")
    assert len(limiter._buckets) == 1


async def test_upstream_retries_idempotent_calls_only() -> None:
    clock = VirtualClock()
    upstream = Upstream("svc", clock, Policy(retries=2, retry_backoff=0.001))
    get = Flaky(2)
    assert await upstream.call("GET", get) == "ok" and get.calls == 3
    post = Flaky(1)
    with pytest.raises(OSError):
        await upstream.call("POST", post)
    assert post.calls == 1
    put = Flaky(1)  # PUT is idempotent by HTTP, but a contract that creates with PUT says otherwise
    with pytest.raises(OSError):
        await upstream.call("PUT", put, idempotent=False)
    assert put.calls == 1
    refused = Flaky(5, UpstreamError("nope", status=400))
    with pytest.raises(UpstreamError):
        await Upstream("svc", clock, Policy(retries=2), retryable=is_retryable).call("GET", refused)
    assert refused.calls == 1  # a refusal is not retried


async def test_upstream_times_out_and_falls_back() -> None:
    upstream = Upstream("svc", VirtualClock(), Policy(timeout=0.01, retries=0, failure_threshold=2))

    async def hangs() -> str:
        await asyncio.sleep(10)
        return "late"

    with pytest.raises(TimeoutError):
        await upstream.call("GET", hangs)
    assert await upstream.call("GET", hangs, fallback=lambda error: f"fallback after {type(error).__name__}") == (
        "fallback after TimeoutError")
    assert upstream.breaker.state is BreakerState.OPEN
    assert await upstream.call("GET", Flaky(0), fallback=lambda error: type(error).__name__) == "CircuitOpen"


def service_app(state: dict[str, Any]) -> Starlette:
    """A tiny service: /items answers state["items"] or fails with state["status"]."""
    async def items(request: Request) -> JSONResponse:
        state["calls"] = state.get("calls", 0) + 1
        if state.get("status"):
            return JSONResponse({"error": state.get("message", "boom")}, status_code=state["status"])
        return JSONResponse(state["items"])

    return Starlette(routes=[Route("/items", items, methods=["GET", "POST"])])


async def test_upstreams_serve_the_last_good_answer_while_a_service_fails() -> None:
    state: dict[str, Any] = {"items": [1, 2]}
    transport = Transport()
    transport.add_app("svc", service_app(state))
    upstreams = Upstreams(transport, VirtualClock(), Policy(retries=1, retry_backoff=0.001))
    try:
        assert await upstreams.call("svc", "GET", "/items", stale_ok=True) == [1, 2]
        state["status"] = 503
        assert await upstreams.call("svc", "GET", "/items", stale_ok=True) == [1, 2]
        assert state["calls"] == 3  # 503 was retried once
        with pytest.raises(UpstreamError) as failed:
            await upstreams.call("svc", "GET", "/items")
        assert failed.value.status == 503
        state.update(status=404, message="item not found")  # a refusal is passed on, never hidden
        with pytest.raises(UpstreamError) as refused:
            await upstreams.call("svc", "GET", "/items", stale_ok=True)
        assert (refused.value.status, refused.value.message) == (404, "item not found")
        calls = state["calls"]
        with pytest.raises(UpstreamError):
            await upstreams.call("svc", "POST", "/items")
        assert state["calls"] == calls + 1
    finally:
        await transport.close()


def test_what_is_retried_and_what_counts_as_a_failure() -> None:
    assert is_retryable(httpx.ConnectError("down")) and is_retryable(TimeoutError())
    assert is_retryable(UpstreamError("x", status=503)) and not is_retryable(UpstreamError("x", status=500))
    assert not is_retryable(UpstreamError("x", status=409))
    assert is_failure(UpstreamError("x", status=500)) and not is_failure(UpstreamError("x", status=404))
    assert is_failure(CircuitOpen())
