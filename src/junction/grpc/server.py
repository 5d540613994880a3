"""Serving services' gRPC servicers: one ``grpc.aio`` server per hosted service, with the runtime's life cycle.

A servicer method gets what a route gets: its ``request``, a fresh unit of work (``uow``, committed
after it returns, run again on a lost race) and, when it asks for it, the ``context``. Errors become
status codes the way routes turn them into HTTP statuses (``status_of``): a ``BadRequest`` is
INVALID_ARGUMENT, ``NotFound`` NOT_FOUND, anything unexpected is logged and answers INTERNAL
without details.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import structlog

from junction.config import Config
from junction.errors import ConcurrencyError, HttpError
from junction.grpc.client import GrpcChannels
from junction.service import Service
from junction.uow import UnitOfWork, run_with_retries

log = structlog.get_logger()

# HTTP status of an HttpError -> the name of the gRPC status code it stands for
_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
          409: "FAILED_PRECONDITION", 422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 501: "UNIMPLEMENTED",
          503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def status_of(error: HttpError) -> Any:
    """The ``grpc.StatusCode`` an HttpError answers with (UNKNOWN for a status without a counterpart)."""
    import grpc

    return getattr(grpc.StatusCode, _CODES.get(error.status, "UNKNOWN"))


@dataclass(frozen=True)
class GrpcConfig:
    """Where a runtime serves its services' servicers and reaches other processes' ones."""

    host: str = "127.0.0.1"  # the address servers listen on
    ports: Mapping[str, int] = field(default_factory=dict)  # service -> port, over the declared one (0: any free)
    peers: Mapping[str, str] = field(default_factory=dict)  # service -> host:port, for services hosted elsewhere

    @classmethod
    def from_config(cls, services: Iterable[Service], config: Config, host: str | None = None) -> GrpcConfig:
        """The settings' view: ``<service>_grpc_port`` over the declared port; a peer answers on the host of its
        ``<service>_url`` (loopback without one) at that port; servers listen on ``host`` (the host setting)."""
        served = [s for s in services if s.servicers]
        ports = {s.name: port for s in served if (port := config.grpc_port(s.name)) is not None}
        peers = {}
        for service in served:
            url = config.service_url(service.name)
            peer = (urlsplit(url).hostname if url else None) or "127.0.0.1"
            peers[service.name] = f"{peer}:{ports.get(service.name, service.grpc_port)}"
        return cls(str(config.get("host", host)), ports, peers)


def _handler(method: Callable[..., Any], make_uow: Callable[[], UnitOfWork]) -> Callable[..., Any]:
    """A ``(request, context)`` handler running ``method`` with the parameters it asks for."""
    if inspect.isasyncgenfunction(method):  # a streaming method runs as written: no unit of work spans a stream
        return method
    params = inspect.signature(method).parameters
    wants_uow, wants_context = "uow" in params, "context" in params
    name = getattr(method, "__qualname__", repr(method))

    async def handle(request: Any, context: Any) -> Any:
        import grpc

        extra = {"context": context} if wants_context else {}
        try:
            if not wants_uow:
                return await method(request, **extra)

            async def work(uow: UnitOfWork) -> Any:
                return await method(request, uow=uow, **extra)

            return await run_with_retries(make_uow, work)
        except grpc.aio.AbortError:
            raise  # the method aborted with a status of its own
        except HttpError as failure:
            code, message = status_of(failure), failure.message
        except ConcurrencyError:
            code, message = grpc.StatusCode.ABORTED, "conflict: too many concurrent changes, try again"
        except Exception:
            log.exception("gRPC method failed", method=name)
            code, message = grpc.StatusCode.INTERNAL, "internal error"
        await context.abort(code, message)

    return handle


class _Bound:
    """What a generated ``add_<Name>Servicer_to_server`` sees: the servicer's methods as gRPC handlers."""

    def __init__(self, servicer: Any, make_uow: Callable[[], UnitOfWork]) -> None:
        self._servicer = servicer
        self._make_uow = make_uow

    def __getattr__(self, name: str) -> Any:
        return _handler(getattr(self._servicer, name), self._make_uow)


class GrpcServers:
    """The gRPC servers of a runtime's hosted services; each started on its port, its address told to
    ``channels`` so that services of this process call it over loopback."""

    def __init__(self, hosted: list[tuple[Service, Callable[[], UnitOfWork]]], config: GrpcConfig,
                 channels: GrpcChannels) -> None:
        self.hosted = [(spec, make_uow) for spec, make_uow in hosted if spec.servicers]
        self.config = config
        self.channels = channels
        self.addresses: dict[str, str] = {}  # service -> where its servers answer, once started
        self._servers: list[Any] = []
        hosted_names = {spec.name for spec, _ in hosted}
        for service, address in config.peers.items():
            if service not in hosted_names:
                channels.add(service, address)

    def port(self, service: Service) -> int:
        """The port ``service``'s servicers are served on: configured, else declared."""
        return self.config.ports.get(service.name, service.grpc_port or 0)

    async def start(self) -> None:
        """Serve every hosted service's servicers; OSError naming the port when it cannot be had."""
        import grpc

        for spec, make_uow in self.hosted:
            # SO_REUSEPORT off: a second process on a busy port must fail, not silently share it
            server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
            for servicer in spec.servicers:
                servicer.register(_Bound(servicer.servicer, make_uow), server)
            port = self.port(spec)
            try:
                bound = server.add_insecure_port(f"{self.config.host}:{port}")
            except RuntimeError:
                raise OSError(f"{spec.name}: gRPC port {port} on {self.config.host} is in use or not available "
                              f"(choose another with JUNCTION_{spec.name.upper()}_GRPC_PORT)") from None
            await server.start()
            self._servers.append(server)
            host = "127.0.0.1" if self.config.host in WILDCARD_HOSTS else self.config.host
            self.addresses[spec.name] = f"{host}:{bound}"
            self.channels.add(spec.name, self.addresses[spec.name])

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop the servers: calls in flight get ``grace`` seconds (None: cancelled at once, as in a crash)."""
        servers, self._servers = self._servers, []
        for server in servers:
            await server.stop(grace)

