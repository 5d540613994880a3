"""FailureCountBreaker: the pipeline page's circuit breaker (spec section 3, scenario G6) on a virtual clock."""

from __future__ import annotations

import pytest

from junction.clock import VirtualClock
from junction.gateway.breaker import OPEN_MESSAGE, BreakerOpen, FailureCountBreaker
from junction.gateway.resilience import BreakerState


class Upstream:
    """A call that fails or succeeds as told, counting its invocations."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    async def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise ConnectionError("upstream down")
        return "ok"


async def fail_times(breaker: FailureCountBreaker, upstream: Upstream, times: int) -> None:
    for _ in range(times):
        with pytest.raises(ConnectionError):
            await breaker.call(upstream)


async def test_g6_three_failures_open_and_the_fourth_call_is_refused_without_calling() -> None:
    clock = VirtualClock()
    breaker, upstream = FailureCountBreaker(clock, max_failures=3, timeout=1.0), Upstream()
    await fail_times(breaker, upstream, 2)
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 2
    await fail_times(breaker, upstream, 1)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen, match=f"^{OPEN_MESSAGE}$"):
        await breaker.call(upstream)
    assert upstream.calls == 3


async def test_g6_after_the_timeout_a_success_closes_and_resets() -> None:
    clock = VirtualClock()
    breaker, upstream = FailureCountBreaker(clock, max_failures=3, timeout=1.0), Upstream()
    await fail_times(breaker, upstream, 3)
    await clock.advance(1.1)
    upstream.failing = False
    assert await breaker.call(upstream) == "ok"
    assert breaker.state is BreakerState.CLOSED and breaker.failures == 0 and upstream.calls == 4


async def test_g6_one_failure_half_open_opens_again_at_once() -> None:
    clock = VirtualClock()
    breaker, upstream = FailureCountBreaker(clock, max_failures=3, timeout=1.0), Upstream()
    await fail_times(breaker, upstream, 3)
    await clock.advance(1.1)
    await fail_times(breaker, upstream, 1)  # failures were not reset: 4 >= 3
    assert breaker.state is BreakerState.OPEN and breaker.failures == 4
    with pytest.raises(BreakerOpen):
        await breaker.call(upstream)
    assert upstream.calls == 4


async def test_the_wait_is_strictly_more_than_the_timeout() -> None:
    clock = VirtualClock()
    breaker, upstream = FailureCountBreaker(clock, max_failures=1, timeout=1.0), Upstream()
    await fail_times(breaker, upstream, 1)
    await clock.advance(1.0)
    with pytest.raises(BreakerOpen):  # exactly the timeout: `time.Since(lastFailure) > timeout` is false
        await breaker.call(upstream)
    await clock.advance(0.001)
    upstream.failing = False
    assert await breaker.call(upstream) == "ok"


async def test_a_success_between_failures_resets_the_count() -> None:
    clock = VirtualClock()
    breaker, upstream = FailureCountBreaker(clock, max_failures=3, timeout=1.0), Upstream()
    await fail_times(breaker, upstream, 2)
    upstream.failing = False
    await breaker.call(upstream)
    upstream.failing = True
    await fail_times(breaker, upstream, 2)
    assert breaker.state is BreakerState.CLOSED


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        FailureCountBreaker(VirtualClock(), max_failures=0)
