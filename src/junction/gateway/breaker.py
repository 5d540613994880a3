"""The consecutive-failure circuit breaker of the pipeline's seed page, on the platform clock.

Exactly the page's semantics (``maxFailures``, ``timeout``, ``failures``, ``lastFailure``)::

    breaker = FailureCountBreaker(clock, max_failures=3, timeout=1.0)
    result = await breaker.call(fn)     # BreakerOpen("circuit breaker is open") without calling fn

* Open, and more than ``timeout`` seconds since the last failure: half-open, and ``fn`` is called.
  Open otherwise: ``BreakerOpen`` and ``fn`` is not called.
* ``fn`` fails: ``failures += 1``, ``last_failure = now``; at ``max_failures`` or more the breaker opens.
* ``fn`` succeeds: ``failures = 0``, closed.

Failures are not reset on the way from open to half-open, so one failure in half-open opens it again.
Half-open lets every caller through (the page has no limit on trial calls). The gateway's own calls
use ``junction.gateway.resilience`` (a sliding window); this class is the page's, for callers that
want its rules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from junction.clock import Clock
from junction.gateway.resilience import BreakerState, CircuitOpen

T = TypeVar("T")
OPEN_MESSAGE = "circuit breaker is open"


class BreakerOpen(CircuitOpen):
    """The page's refusal: the breaker is open and ``fn`` was not called."""

    def __init__(self) -> None:
        super().__init__(OPEN_MESSAGE)


class FailureCountBreaker:
    """Opens after ``max_failures`` failures without a success between; half-opens ``timeout`` s after the last."""

    def __init__(self, clock: Clock, max_failures: int = 5, timeout: float = 30.0) -> None:
        if max_failures < 1 or timeout < 0:
            raise ValueError("max_failures must be >= 1 and timeout >= 0")
        self.clock = clock
        self.max_failures = max_failures
        self.timeout = timeout
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.last_failure: float | None = None

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``fn``'s result through the breaker; its error (counted), or ``BreakerOpen`` without calling it."""
        if self.state is BreakerState.OPEN:
            waited = self.clock.timestamp() - (self.last_failure or 0.0)
            if waited > self.timeout:  # strictly more, as the page's `time.Since(lastFailure) > timeout`
                self.state = BreakerState.HALF_OPEN
            else:
                raise BreakerOpen()
        try:
            result = await fn()
        except Exception:
            self.failures += 1
            self.last_failure = self.clock.timestamp()
            if self.failures >= self.max_failures:
                self.state = BreakerState.OPEN
            raise
        self.failures = 0
        self.state = BreakerState.CLOSED
        return result


__all__ = ["OPEN_MESSAGE", "BreakerOpen", "FailureCountBreaker"]
