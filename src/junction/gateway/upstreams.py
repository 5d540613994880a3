"""The services behind a gateway, each called through its own resilience policy.

Only infrastructure failures count against a service: timeouts, transport errors and 5xx answers
open its circuit and (for idempotent calls) are retried; a clean 4xx answer such as "vehicle not
found" is the service working and goes straight back to the caller. Reads may fall back to the
last good answer while the service is failing (``stale_ok``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from junction.clock import Clock
from junction.errors import HttpError
from junction.gateway.resilience import CircuitOpen, Policy, Upstream
from junction.transport import Transport

log = structlog.get_logger()

RETRY_STATUSES = frozenset({502, 503, 504})


def is_failure(error: BaseException) -> bool:
    """Whether an error says the upstream is unwell (not merely that the request was refused)."""
    if isinstance(error, HttpError):
        return error.status >= 500
    return True


def is_retryable(error: BaseException) -> bool:
    """Transient failures worth another attempt of an idempotent call."""
    if isinstance(error, HttpError):
        return error.status in RETRY_STATUSES
    return isinstance(error, httpx.TransportError | TimeoutError | OSError)


class Upstreams:
    """Service name → Upstream over the runtime's transport."""

    def __init__(self, transport: Transport, clock: Clock, policy: Policy | None = None,
                 policies: Mapping[str, Policy] | None = None, stale_entries: int = 1000) -> None:
        self.transport = transport
        self.clock = clock
        self.policy = policy or Policy()
        self.policies = dict(policies or {})
        self._upstreams: dict[str, Upstream] = {}
        self._last_good: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.stale_entries = stale_entries

    def upstream(self, service: str) -> Upstream:
        """The Upstream of a service (made on first use)."""
        if service not in self._upstreams:
            self._upstreams[service] = Upstream(service, self.clock, self.policies.get(service, self.policy),
                                                retryable=is_retryable, is_failure=is_failure)
        return self._upstreams[service]

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   headers: dict[str, str] | None = None, stale_ok: bool = False) -> Any:
        """Call a service's HTTP contract; its decoded answer, or UpstreamError with its status and message.

        Only GETs are retried: the contracts create with PUT, and a retried create creates twice.
        """
        client = self.transport.client(service)
        key = (service, path)

        async def action() -> Any:
            return await client.request(method, path, json=json, headers=headers)

        def fallback(error: BaseException) -> Any:
            if not is_failure(error) or key not in self._last_good:
                raise error
            log.warning("serving a stale answer", service=service, path=path, error=repr(error))
            return self._last_good[key]

        result = await self.upstream(service).call(method, action, fallback if stale_ok else None,
                                                   idempotent=method.upper() == "GET")
        if stale_ok:
            self._last_good[key] = result
            self._last_good.move_to_end(key)
            if len(self._last_good) > self.stale_entries:
                self._last_good.popitem(last=False)
        return result


__all__ = ["CircuitOpen", "Upstreams", "is_failure", "is_retryable"]
