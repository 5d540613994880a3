"""Resilience on a virtual clock: sliding-window breaker, time limiter, retry and backoff; the ebike Upstreams."""

from __future__ import annotations

import asyncio
import itertools
import random
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
    Guard,
    Policy,
    RateLimited,
    RateLimiter,
    Resilience,
    Retry,
    SlidingWindow,
    TimeLimitExceeded,
    Upstream,
)
from junction.gateway.upstreams import Upstreams, is_failure, is_retryable
from junction.transport import Transport, UpstreamError
from tests.unit.virtual import drive


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


# -- Resilience4j semantics: sliding-window breaker, time limiter, retry with backoff -----------------

WINDOW = SlidingWindow(size=10, failure_rate=0.5, open_for=5.0, half_open_calls=3)
SHOP_RETRY = Retry(retries=3, methods={"GET", "PUT", "DELETE"}, statuses={500, 502, 503, 504}, first=0.05, factor=2,
                   max=0.2, jitter=0.25)


class Answering:
    """An upstream answering the statuses of ``script`` in turn (then the last one), timing each attempt."""

    def __init__(self, clock: VirtualClock, *script: int | Exception) -> None:
        self.clock = clock
        self.script = list(script)
        self.at: list[float] = []

    async def __call__(self) -> int:
        self.at.append(self.clock.timestamp())
        outcome = self.script[min(len(self.at), len(self.script)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @property
    def calls(self) -> int:
        return len(self.at)


async def outcome(guard: Guard, clock: VirtualClock, upstream: Answering, method: str = "POST") -> str:
    """What a call through ``guard`` came to: "ok", or the exception's class name."""
    try:
        await drive(clock, guard.call(method, upstream, status=lambda code: code))
    except Exception as error:
        return type(error).__name__
    return "ok"


async def test_window_opens_at_the_failure_rate_once_it_holds_the_minimum_calls() -> None:
    clock = VirtualClock()
    guard = Resilience(breaker=WINDOW, retry=None).guard(clock)
    breaker = guard.breaker
    assert breaker is not None
    ok, failing = Answering(clock, 200), Answering(clock, 503)
    for _ in range(4):
        assert await outcome(guard, clock, failing) == "FailedAnswer"
    for _ in range(5):
        assert await outcome(guard, clock, ok) == "ok"
    assert breaker.state is BreakerState.CLOSED and breaker.failure_rate is None  # 9 calls: fewer than the window
    assert await outcome(guard, clock, ok) == "ok"
    assert breaker.failure_rate == 0.4 and breaker.state is BreakerState.CLOSED  # 4 of 10
    assert await outcome(guard, clock, failing) == "FailedAnswer"  # slides: the oldest failure leaves, 4 of 10
    assert breaker.failure_rate == 0.4 and breaker.state is BreakerState.CLOSED
    for _ in range(3):
        assert await outcome(guard, clock, ok) == "ok"  # the three other old failures leave: 1 of 10
    assert breaker.failure_rate == 0.1
    for _ in range(4):
        assert await outcome(guard, clock, failing) == "FailedAnswer"
    assert breaker.state is BreakerState.OPEN  # 5 of the last 10: 50 %


async def test_minimum_calls_can_open_a_window_early() -> None:
    clock = VirtualClock()
    guard = Resilience(breaker=SlidingWindow(size=10, minimum_calls=4), retry=None).guard(clock)
    for _ in range(2):
        await outcome(guard, clock, Answering(clock, OSError("refused")))
    await outcome(guard, clock, Answering(clock, 200))
    assert guard.breaker is not None and guard.breaker.state is BreakerState.CLOSED
    await outcome(guard, clock, Answering(clock, 200))  # 2 of 4
    assert guard.breaker.state is BreakerState.OPEN


async def opened(clock: VirtualClock, policy: Resilience | None = None) -> Guard:
    """A guard whose circuit has just opened (10 failed calls)."""
    guard = (policy or Resilience(breaker=WINDOW, retry=None)).guard(clock)
    for _ in range(10):
        await outcome(guard, clock, Answering(clock, OSError("refused")))
    assert guard.breaker is not None and guard.breaker.state is BreakerState.OPEN
    return guard


async def test_an_open_circuit_rejects_without_calling_then_half_opens_after_the_wait() -> None:
    clock = VirtualClock()
    guard = await opened(clock)
    upstream = Answering(clock, 200)
    for method in ("GET", "POST"):
        assert await outcome(guard, clock, upstream, method) == "CircuitOpen"
    assert upstream.calls == 0
    await clock.advance(4.999)
    assert guard.breaker is not None and guard.breaker.state is BreakerState.OPEN
    await clock.advance(0.001)
    assert guard.breaker.state is BreakerState.HALF_OPEN


async def test_half_open_permits_three_trials_and_closes_when_they_succeed() -> None:
    clock = VirtualClock()
    guard = await opened(clock)
    await clock.advance(5)
    gate = asyncio.Event()
    upstream_calls = 0

    async def slow() -> int:
        nonlocal upstream_calls
        upstream_calls += 1
        await gate.wait()
        return 200

    trials = [asyncio.create_task(guard.call("GET", slow, status=lambda code: code)) for _ in range(3)]
    while upstream_calls < 3:
        await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):  # a fourth call while the three trials run
        await guard.call("GET", slow, status=lambda code: code)
    assert upstream_calls == 3
    gate.set()
    assert await asyncio.gather(*trials) == [200, 200, 200]
    assert guard.breaker is not None and guard.breaker.state is BreakerState.CLOSED
    assert guard.breaker.failure_rate is None  # a fresh window


@pytest.mark.parametrize(("trials", "state"), [
    ((200, 200, 503), BreakerState.CLOSED),  # 1 of 3 failed: 33 % is under the threshold
    ((503, 200, 503), BreakerState.OPEN),  # 2 of 3: open again, for another wait
])
async def test_half_open_decides_by_the_trials_failure_rate(trials: tuple[int, ...], state: BreakerState) -> None:
    clock = VirtualClock()
    guard = await opened(clock)
    await clock.advance(5)
    for code in trials:
        await outcome(guard, clock, Answering(clock, code))
    assert guard.breaker is not None and guard.breaker.state is state
    if state is BreakerState.OPEN:
        assert await outcome(guard, clock, Answering(clock, 200)) == "CircuitOpen"
        await clock.advance(5)
        assert guard.breaker.state is BreakerState.HALF_OPEN


async def test_a_cancelled_trial_gives_its_half_open_slot_back() -> None:
    clock = VirtualClock()
    guard = await opened(clock, Resilience(breaker=WINDOW, time_limit=None))
    await clock.advance(5)
    hanging = asyncio.create_task(guard.call("GET", asyncio.Event().wait))
    await asyncio.sleep(0)
    hanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hanging
    for _ in range(3):
        assert await outcome(guard, clock, Answering(clock, 200), "GET") == "ok"
    assert guard.breaker is not None and guard.breaker.state is BreakerState.CLOSED


async def test_the_time_limit_cancels_the_call_and_counts_as_a_failure() -> None:
    clock = VirtualClock()
    guard = Resilience(breaker=SlidingWindow(size=2, failure_rate=0.5), time_limit=10.0).guard(clock)
    cancelled = asyncio.Event()

    async def hangs() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return 200

    call = asyncio.create_task(guard.call("GET", hangs))
    await clock.advance(9.999)
    assert not call.done()
    await clock.advance(0.001)
    with pytest.raises(TimeLimitExceeded) as exceeded:
        await call
    assert isinstance(exceeded.value, TimeoutError) and cancelled.is_set()
    await outcome(guard, clock, Answering(clock, 200))
    assert guard.breaker is not None and guard.breaker.state is BreakerState.OPEN  # 1 of 2 failed


async def test_the_time_limit_covers_the_retries() -> None:
    clock = VirtualClock()
    guard = Resilience(breaker=None, time_limit=0.1, retry=SHOP_RETRY).guard(clock, rng=random.Random(1))
    upstream = Answering(clock, 503)
    with pytest.raises(TimeLimitExceeded):
        await drive(clock, guard.call("GET", upstream, status=lambda code: code))
    assert upstream.calls == 2  # 50 ms (±25 %) to the second attempt, then 100 ms more passes the limit


@pytest.mark.parametrize(("method", "script", "attempts", "result"), [
    ("GET", (503, 503, 200), 3, "ok"),
    ("PUT", (502, 200), 2, "ok"),
    ("DELETE", (httpx.ConnectError("refused"), 200), 2, "ok"),
    ("get", (504,), 4, "FailedAnswer"),  # every retry spent: the last answer fails the call
    ("GET", (OSError("reset"),), 4, "OSError"),
    ("POST", (503, 200), 1, "FailedAnswer"),  # POST is not in the retried methods
    ("PATCH", (httpx.ConnectError("refused"), 200), 1, "ConnectError"),
    ("GET", (501, 200), 1, "ok"),  # 501 is not a retried status, nor a failure one
    ("GET", (404, 200), 1, "ok"),
    ("GET", (ValueError("bug"), 200), 1, "ValueError"),  # not a connection error
])
async def test_retry_only_the_listed_methods_statuses_and_connection_errors(
        method: str, script: tuple[int | Exception, ...], attempts: int, result: str) -> None:
    clock = VirtualClock()
    guard = Resilience(breaker=WINDOW, retry=SHOP_RETRY).guard(clock)
    upstream = Answering(clock, *script)
    assert await outcome(guard, clock, upstream, method) == result
    assert upstream.calls == attempts


async def test_backoff_is_50_100_200_ms_then_capped() -> None:
    clock = VirtualClock()
    policy = Resilience(breaker=None, retry=Retry(retries=4, first=0.05, factor=2, max=0.2, jitter=0.0))
    upstream = Answering(clock, 503)
    await outcome(policy.guard(clock), clock, upstream, "GET")
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(upstream.at)]
    assert gaps == [0.05, 0.1, 0.2, 0.2]


async def test_backoff_jitter_stays_within_a_quarter_of_each_step() -> None:
    seen: list[list[float]] = []
    for seed in range(30):
        clock = VirtualClock()
        upstream = Answering(clock, 503)
        await outcome(Resilience(breaker=None, retry=SHOP_RETRY).guard(clock, rng=random.Random(seed)), clock,
                      upstream, "GET")
        gaps = [b - a for a, b in itertools.pairwise(upstream.at)]
        for gap, base in zip(gaps, (0.05, 0.1, 0.2), strict=True):
            assert base * 0.75 - 1e-9 <= gap <= base * 1.25 + 1e-9
        seen.append(gaps)
    assert len({round(g[0], 6) for g in seen}) > 10  # it does spread
    assert SHOP_RETRY.delay(1, 0.0) == pytest.approx(0.0375) and SHOP_RETRY.delay(3, 0.999999) == pytest.approx(0.25)


def test_policies_refuse_nonsense() -> None:
    for bad in (dict(size=0), dict(failure_rate=50), dict(half_open_calls=0), dict(open_for=-1)):
        with pytest.raises(ValueError):
            SlidingWindow(**bad)  # type: ignore[arg-type]
    for wrong in (dict(retries=-1), dict(jitter=1.0), dict(first=0.3, max=0.2), dict(factor=0.5)):
        with pytest.raises(ValueError):
            Retry(**wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Resilience(time_limit=0)
    assert Retry(methods={"get", "Put"}).methods == frozenset({"GET", "PUT"})
    assert SlidingWindow(size=10).calls_needed == 10 and SlidingWindow(size=10, minimum_calls=100).calls_needed == 10
