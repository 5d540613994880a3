"""Resilience of calls to an upstream: circuit breakers, a time limiter, retry with backoff, rate limits.

Two families live here:

* ``Resilience`` (Resilience4j semantics, used by the REST proxy edge): a count-based
  ``SlidingWindow`` breaker, a ``time_limit`` on the whole call and a ``Retry`` of chosen methods,
  statuses and connection errors with exponential backoff and jitter. ``Resilience`` is the shareable
  configuration; ``Resilience.guard(clock)`` makes the live ``Guard`` (breaker state) of one route.
* ``Policy``/``Upstream`` with the consecutive-failure ``CircuitBreaker``: the ebike gateway's calls.

Everything that waits or counts time reads the platform clock, so tests drive a breaker's wait in the
open state, a time limit, a backoff or a rate limiter's refill with a virtual clock. (``Upstream``
still backs off and times out in real time, as the ebike gateway always did.)

Exceptions::

    Exception
     ├── CircuitOpen            the breaker refused the call: the upstream was not called
     ├── FailedAnswer           the upstream answered with a failure status (after any retries)
     ├── RateLimited            a key spent its tokens
     └── TimeoutError
          └── TimeLimitExceeded the call took longer than its time limit (and was cancelled)
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from junction.clock import Clock, RealClock

T = TypeVar("T")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SERVER_ERRORS = frozenset({500, 502, 503, 504})
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)


class CircuitOpen(Exception):
    """The breaker is open (or half-open with every trial call taken): the upstream is not called."""


class TimeLimitExceeded(TimeoutError):
    """A call took longer than its time limit on the platform clock; it was cancelled."""


class FailedAnswer(Exception):
    """The upstream answered, with a status that counts as a failure; ``answer`` is what it sent."""

    def __init__(self, answer: Any, status: int) -> None:
        super().__init__(f"upstream answered {status}")
        self.answer = answer
        self.status = status


class BreakerState(enum.Enum):
    """Closed: calls pass. Open: calls fail fast. Half-open: trial calls decide."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# -- Resilience4j-style policies ---------------------------------------------------------------------


@dataclass(frozen=True)
class SlidingWindow:
    """A count-based circuit breaker's settings; the defaults are Resilience4j's.

    The last ``size`` calls are kept; once at least ``minimum_calls`` are (default: the window size,
    as Resilience4j caps it there) and ``failure_rate`` of them failed, the circuit opens for
    ``open_for`` seconds, then lets ``half_open_calls`` trial calls through: it closes when their
    failure rate is under the threshold and opens again otherwise.
    """

    size: int = 100
    failure_rate: float = 0.5
    open_for: float = 60.0
    half_open_calls: int = 10
    minimum_calls: int | None = None

    def __post_init__(self) -> None:
        if self.size < 1 or self.half_open_calls < 1:
            raise ValueError("a sliding window needs size >= 1 and half_open_calls >= 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError("failure_rate is a fraction in (0, 1], e.g. 0.5 for 50 %")
        if self.open_for < 0 or (self.minimum_calls is not None and self.minimum_calls < 1):
            raise ValueError("open_for must be >= 0 and minimum_calls >= 1")

    @property
    def calls_needed(self) -> int:
        """How many recorded calls the failure rate needs before it can open the circuit."""
        return min(self.minimum_calls or self.size, self.size)


@dataclass(frozen=True)
class Retry:
    """Which calls are tried again, and how long to wait in between (Spring Cloud Gateway's Retry filter).

    ``retries`` more attempts for ``methods`` only, when the answer's status is in ``statuses`` or the
    attempt raised one of ``errors`` (connection errors by default). The wait before retry ``n`` (1-based)
    is ``min(first * factor ** (n - 1), max)``, then spread by ``jitter``: uniformly within ±jitter of it.
    """

    retries: int = 3
    methods: Collection[str] = frozenset({"GET"})
    statuses: Collection[int] = SERVER_ERRORS
    first: float = 0.05
    factor: float = 2.0
    max: float = 0.2
    jitter: float = 0.0
    errors: tuple[type[BaseException], ...] = CONNECTION_ERRORS

    def __post_init__(self) -> None:
        if self.retries < 0 or self.first < 0 or self.factor < 1 or self.max < self.first:
            raise ValueError("retry needs retries >= 0, first >= 0, factor >= 1 and max >= first")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")
        # stored as frozensets: the policy is shared by routes and must not change under them
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    def delay(self, retry: int, spread: float = 0.5) -> float:
        """The wait before retry number ``retry`` (1-based); ``spread`` in [0, 1) picks the jitter (0.5: none)."""
        base = min(self.first * self.factor ** (retry - 1), self.max)
        return base * (1 + self.jitter * (2 * spread - 1))

    def applies_to(self, method: str) -> bool:
        """Whether calls with ``method`` are retried at all."""
        return self.retries > 0 and method.upper() in self.methods


@dataclass(frozen=True)
class Resilience:
    """How calls through one route are protected; shareable, each ``guard`` has its own breaker.

    Order, outside in (as Spring Cloud Gateway's CircuitBreaker filter around its Retry filter):
    breaker → time limit (on the whole call, retries included) → retry → the attempt. An answer whose
    status is in ``failure_statuses`` counts against the breaker and, once retries are done, fails the
    call with ``FailedAnswer``, like a connection error or a timeout.
    """

    breaker: SlidingWindow | None = field(default_factory=SlidingWindow)
    time_limit: float | None = 10.0
    retry: Retry | None = None
    failure_statuses: Collection[int] = SERVER_ERRORS

    def __post_init__(self) -> None:
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError("time_limit must be positive (or None for none)")
        object.__setattr__(self, "failure_statuses", frozenset(self.failure_statuses))

    def guard(self, clock: Clock, name: str = "", rng: random.Random | None = None) -> Guard:
        """The live state (breaker, jitter source) of one route or upstream under this policy."""
        return Guard(self, clock, name, rng)


class SlidingWindowBreaker:
    """A count-based circuit breaker on the platform clock (``SlidingWindow`` says how it behaves).

    ``acquire`` asks for permission (``CircuitOpen`` otherwise) and returns a permit; ``record`` books
    the outcome of the permitted call. A permit belongs to one period of one state: an outcome that
    arrives after the circuit changed state (a slow call that started while closed) is not counted.
    """

    def __init__(self, clock: Clock, config: SlidingWindow, name: str = "") -> None:
        self.clock = clock
        self.config = config
        self.name = name
        self._state = BreakerState.CLOSED
        self._period = 0  # bumped on every state change; permits carry the period they were given in
        self._opened_at = 0.0
        self._window: deque[bool] = deque(maxlen=config.size)  # True: the call failed
        self._trials_started = 0
        self._trials: list[bool] = []

    @property
    def state(self) -> BreakerState:
        """The state at the clock's now (an open circuit half-opens once its wait is over)."""
        if self._state is BreakerState.OPEN and self.clock.timestamp() >= self._opened_at + self.config.open_for:
            self._enter(BreakerState.HALF_OPEN)
        return self._state

    @property
    def failure_rate(self) -> float | None:
        """The failure rate of the calls in the closed window, or None while there are too few."""
        if len(self._window) < self.config.calls_needed:
            return None
        return sum(self._window) / len(self._window)

    def acquire(self) -> int:
        """Permission for one call: its permit, or ``CircuitOpen``."""
        state = self.state
        if state is BreakerState.OPEN:
            raise CircuitOpen(f"circuit {self.name or 'breaker'} open")
        if state is BreakerState.HALF_OPEN:
            if self._trials_started >= self.config.half_open_calls:
                raise CircuitOpen(f"circuit {self.name or 'breaker'} half-open: every trial call is taken")
            self._trials_started += 1
        return self._period

    def record(self, permit: int, failed: bool) -> None:
        """Book the outcome of a permitted call."""
        if permit != self._period:
            return
        if self._state is BreakerState.CLOSED:
            self._window.append(failed)
            rate = self.failure_rate
            if rate is not None and rate >= self.config.failure_rate:
                self._enter(BreakerState.OPEN)
        elif self._state is BreakerState.HALF_OPEN:
            self._trials.append(failed)
            if len(self._trials) >= self.config.half_open_calls:
                rate = sum(self._trials) / len(self._trials)
                self._enter(BreakerState.OPEN if rate >= self.config.failure_rate else BreakerState.CLOSED)

    def release(self, permit: int) -> None:
        """Give a permit back unused (the call was cancelled): a half-open trial slot is free again."""
        if permit == self._period and self._state is BreakerState.HALF_OPEN and self._trials_started > 0:
            self._trials_started -= 1

    def _enter(self, state: BreakerState) -> None:
        self._state = state
        self._period += 1
        self._window.clear()
        self._trials_started = 0
        self._trials = []
        if state is BreakerState.OPEN:
            self._opened_at = self.clock.timestamp()


async def time_limit(clock: Clock, seconds: float | None, work: Awaitable[T]) -> T:
    """The result of ``work``, or ``TimeLimitExceeded`` (``work`` cancelled) after ``seconds`` of platform time."""
    if seconds is None:
        return await work
    if type(clock) is RealClock:  # the common case, and the cheapest: no extra task per call
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                return await work
        except TimeoutError:
            if limit.expired():
                raise TimeLimitExceeded(f"no answer within {seconds:g} s") from None
            raise
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task})  # let the abandoned call unwind before answering
    if task.cancelled():
        raise TimeLimitExceeded(f"no answer within {seconds:g} s")
    return task.result()


class Guard:
    """One route's (or upstream's) live resilience: its breaker, time limit and retry, on the platform clock."""

    def __init__(self, policy: Resilience, clock: Clock, name: str = "", rng: random.Random | None = None,
                 is_failure: Callable[[BaseException], bool] | None = None) -> None:
        self.policy = policy
        self.clock = clock
        self.name = name
        self.rng = rng or random.Random()
        self.breaker = SlidingWindowBreaker(clock, policy.breaker, name) if policy.breaker else None
        # Which exceptions count against the breaker: by default all of them (transport errors, timeouts).
        self.is_failure = is_failure or (lambda error: True)

    async def call(self, method: str, attempt: Callable[[], Awaitable[T]],
                   status: Callable[[T], int] | None = None) -> T:
        """Run ``attempt`` (one request) under the policy; ``status`` reads an answer's status code.

        Raises ``CircuitOpen`` (not attempted), ``TimeLimitExceeded``, ``FailedAnswer`` (a failure status
        after the retries) or the last attempt's own exception.
        """
        permit = self.breaker.acquire() if self.breaker is not None else 0
        try:
            answer = await time_limit(self.clock, self.policy.time_limit, self._attempts(method, attempt, status))
        except Exception as error:
            if self.breaker is not None:
                self.breaker.record(permit, self.is_failure(error))
            raise
        except BaseException:  # cancelled (the client went away): neither a success nor a failure
            if self.breaker is not None:
                self.breaker.release(permit)
            raise
        code = status(answer) if status is not None else None
        failed = code is not None and code in self.policy.failure_statuses
        if self.breaker is not None:
            self.breaker.record(permit, failed)
        if failed and code is not None:
            raise FailedAnswer(answer, code)
        return answer

    async def _attempts(self, method: str, attempt: Callable[[], Awaitable[T]],
                        status: Callable[[T], int] | None) -> T:
        retry = self.policy.retry
        if retry is None or not retry.applies_to(method):
            return await attempt()

        def again(answer: T) -> bool:
            return status is not None and status(answer) in retry.statuses

        def wait(state: RetryCallState) -> float:
            return retry.delay(state.attempt_number, self.rng.random())

        def last_outcome(state: RetryCallState) -> Any:
            return state.outcome.result() if state.outcome is not None else None  # an answer, or its error again

        retrying = AsyncRetrying(
            stop=stop_after_attempt(retry.retries + 1), wait=wait, sleep=self.clock.sleep,
            retry=retry_if_exception_type(retry.errors) | retry_if_result(again),
            retry_error_callback=last_outcome, reraise=True,
        )
        result: T = await retrying(attempt)
        return result


# -- The ebike gateway's policy: consecutive failures ------------------------------------------------


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
    """How the ebike gateway's calls to one upstream are protected."""

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


__all__ = [
    "CONNECTION_ERRORS", "SERVER_ERRORS", "BreakerState", "CircuitBreaker", "CircuitOpen", "FailedAnswer", "Guard",
    "Policy", "RateLimited", "RateLimiter", "Resilience", "Retry", "SlidingWindow", "SlidingWindowBreaker",
    "TimeLimitExceeded", "Upstream", "time_limit",
]
