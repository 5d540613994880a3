"""Per-upstream resilience: timeout, retry of idempotent calls, circuit breaker, rate limit.

Everything that waits or counts time reads the platform clock, so tests drive a breaker's
reset timeout or a rate limiter's refill with a virtual clock.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from junction.clock import Clock

T = TypeVar("T")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class CircuitOpen(Exception):
    """The breaker is open: the upstream is not called."""


class BreakerState(enum.Enum):
    """Closed: calls pass. Open: calls fail fast. Half-open: one trial call decides."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``failure_threshold`` failures in a row; tries again after ``reset_timeout`` s."""

    def __init__(self, clock: Clock, failure_threshold: int = 5, reset_timeout: float = 30.0,
                 is_failure: Callable[[BaseException], bool] | None = None) -> None:
        self.clock = clock
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        # What counts against the upstream: by default every exception. A gateway passes a predicate
        # so that an upstream's clean "404 not found" answer does not open the circuit.
        self.is_failure = is_failure or (lambda error: True)
        self.failures = 0
        self.opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """The state at the clock's now."""
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock.timestamp() - self.opened_at >= self.reset_timeout:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    async def call(self, action: Callable[[], Awaitable[T]]) -> T:
        """Run ``action`` through the breaker."""
        state = self.state
        if state is BreakerState.OPEN or (state is BreakerState.HALF_OPEN and self._trial_running):
            raise CircuitOpen("circuit open")
        self._trial_running = state is BreakerState.HALF_OPEN
        try:
            result = await action()
        except Exception as error:
            if self.is_failure(error):
                self._failed()
            else:
                self._succeeded()
            raise
        finally:
            self._trial_running = False
        self._succeeded()
        return result

    def _succeeded(self) -> None:
        self.failures, self.opened_at = 0, None

    def _failed(self) -> None:
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.failure_threshold:
            self.opened_at = self.clock.timestamp()


class RateLimited(Exception):
    """Too many requests for one key; ``retry_after`` seconds until a token is back."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited, retry after {retry_after:.1f} s")
        self.retry_after = retry_after


class RateLimiter:
    """A token bucket per key: ``burst`` tokens, refilled at ``rate`` per second of platform time."""

    def __init__(self, clock: Clock, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> None:
        """Spend one token of ``key``'s bucket, or raise RateLimited."""
        now = self.clock.timestamp()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            raise RateLimited((1 - tokens) / self.rate)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._forget_full_buckets(now)
        self._buckets[key] = (tokens - 1, now)

    def _forget_full_buckets(self, now: float) -> None:
        """Bound memory: a bucket that has refilled completely carries no information."""
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]


@dataclass(frozen=True)
class Policy:
    """How calls to one upstream are protected."""

    timeout: float = 5.0
    retries: int = 2  # extra attempts, for idempotent methods only
    retry_backoff: float = 0.05
    failure_threshold: int = 5
    reset_timeout: float = 30.0


class Upstream:
    """Calls to one upstream with timeout, retry (idempotent methods only) and a circuit breaker."""

    def __init__(self, name: str, clock: Clock, policy: Policy | None = None,
                 retryable: Callable[[BaseException], bool] | None = None,
                 is_failure: Callable[[BaseException], bool] | None = None) -> None:
        self.name = name
        self.policy = policy or Policy()
        self.breaker = CircuitBreaker(clock, self.policy.failure_threshold, self.policy.reset_timeout, is_failure)
        self._retryable = retryable or (lambda error: isinstance(error, OSError | TimeoutError))

    async def call(self, method: str, action: Callable[[], Awaitable[T]],
                   fallback: Callable[[BaseException], T] | None = None, idempotent: bool | None = None) -> T:
        """Run ``action``; on failure (or an open circuit) use ``fallback`` when given.

        ``idempotent`` overrides what the method says: some contracts create with PUT, and a retried
        create would create twice.
        """
        retry = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        attempts = 1 + (self.policy.retries if retry else 0)

        async def attempt() -> T:
            async with asyncio.timeout(self.policy.timeout):
                return await action()

        async def with_retries() -> T:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(attempts), reraise=True,
                wait=wait_exponential(multiplier=self.policy.retry_backoff, max=1.0),
                retry=retry_if_exception(self._retryable),
            )
            async for trial in retrying:
                with trial:
                    return await attempt()
            raise AssertionError("unreachable")

        try:
            return await self.breaker.call(with_retries)
        except Exception as error:
            if fallback is None:
                raise
            return fallback(error)
