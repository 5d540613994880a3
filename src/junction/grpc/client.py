"""Calling another service's gRPC servicer: one channel per service, stubs whose calls carry a deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

if TYPE_CHECKING:
    from junction.uow import UnitOfWork

S = TypeVar("S")


class GrpcChannels:
    """Service name → its gRPC address, and one channel per service, opened on first use."""

    def __init__(self) -> None:
        self._addresses: dict[str, str] = {}
        self._channels: dict[str, Any] = {}
        self._stubs: dict[tuple[str, Callable[[Any], Any]], Any] = {}
        self._opened: list[Any] = []  # every channel opened, replaced ones included, to close at the end

    def add(self, service: str, address: str) -> None:
        """Reach ``service``'s servicers at ``address`` (``host:port``)."""
        if self._addresses.get(service) != address:
            self._addresses[service] = address
            self._channels.pop(service, None)  # a stale channel is closed with the others, not reused
            self._stubs = {key: stub for key, stub in self._stubs.items() if key[0] != service}

    def address(self, service: str) -> str:
        """Where ``service`` answers gRPC; LookupError when nothing said so."""
        try:
            return self._addresses[service]
        except KeyError:
            raise LookupError(f"no gRPC address for service {service!r}") from None

    def channel(self, service: str) -> Any:
        """The ``grpc.aio`` channel to ``service`` (opened on first use, in the running event loop)."""
        channel = self._channels.get(service)
        if channel is None:
            import grpc

            channel = self._channels[service] = grpc.aio.insecure_channel(self.address(service))
            self._opened.append(channel)
        return channel

    def stub(self, service: str, make: Callable[[Any], S]) -> S:
        """``make(channel)`` for ``service``, made once (a stub is a set of prepared callables)."""
        key = (service, make)
        if key not in self._stubs:
            self._stubs[key] = make(self.channel(service))
        return cast(S, self._stubs[key])

    async def close(self) -> None:
        """Close every channel opened."""
        channels, self._opened = self._opened, []
        self._channels.clear()
        self._stubs.clear()
        for channel in channels:
            await channel.close()


class _WithDeadline:
    """A stub whose every call carries ``timeout=deadline`` unless the caller gives its own."""

    def __init__(self, stub: Any, deadline: float) -> None:
        self._stub = stub
        self._deadline = deadline

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._stub, name)
        deadline = self._deadline

        def call(request: Any, *, timeout: float | None = None, **options: Any) -> Any:
            return method(request, timeout=deadline if timeout is None else timeout, **options)

        setattr(self, name, call)  # made once: later lookups find it without __getattr__
        return call


class GrpcClient(Generic[S]):
    """How one service calls another's servicer: ``client(uow).Method(request)``, with a deadline.

    ``stub`` is the generated ``<Name>Stub`` class; a call that has no answer within ``deadline``
    seconds fails with DEADLINE_EXCEEDED instead of holding the caller (and its client) forever.
    """

    def __init__(self, service: str, stub: Callable[[Any], S], deadline: float = 2.0) -> None:
        self.service = service
        self.deadline = deadline
        self._stub = stub

    def __call__(self, uow: UnitOfWork) -> S:
        """The stub over the unit of work's channel to the service."""
        return uow.channels.stub(self.service, self._make)

    def _make(self, channel: Any) -> S:
        return cast(S, _WithDeadline(self._stub(channel), self.deadline))
