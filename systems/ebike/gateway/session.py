"""Who is calling: the session behind a request, and the role checks every resolver shares.

A request's token (``Authorization: Bearer`` wins over the ``jwt`` cookie; over WebSocket also the
``connection_init`` payload) is verified (RS256, platform-clock expiry) and then its session is
asked of auth (``GET /auth`` with ``X-Session-ID``) on every request, so logout revokes at once.
A token that fails either check makes the caller anonymous and, when it came from the cookie,
deletes the cookie: never an error.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from graphql import GraphQLResolveInfo
from starlette.requests import HTTPConnection
from starlette.responses import Response

from ebike.gateway import dto
from junction.gateway.graphql import FORBIDDEN, UNAUTHENTICATED, ApiError

if TYPE_CHECKING:
    from ebike.gateway.app import Gateway

Role = Literal["ADMIN", "CUSTOMER"]
ADMIN: Role = "ADMIN"
CUSTOMER: Role = "CUSTOMER"
SIGNED_IN: tuple[Role, ...] = (ADMIN, CUSTOMER)

NOT_AUTHENTICATED = "Not authenticated"
NOT_AUTHORIZED = "Not authorized"


@dataclass(frozen=True)
class Session:
    """A live session: the user and the auth session it belongs to."""

    id: str
    username: str
    role: Role
    last_login: str | None
    session_id: str

    @classmethod
    def of(cls, user: dto.Dto) -> Session:
        """From auth's UserDTO (with its sessionId)."""
        return cls(user["id"], user["username"], user["role"], user.get("lastLogin"), user["sessionId"])

    def claims(self) -> dict[str, Any]:
        """The JWT claims of the reference: ``{id, username, role, sessionId, lastLogin}``."""
        return {"id": self.id, "username": self.username, "role": self.role, "sessionId": self.session_id,
                "lastLogin": self.last_login}

    def user(self) -> dto.Dto:
        """The GraphQL User."""
        return {"id": self.id, "username": self.username, "role": self.role, "lastLogin": self.last_login}


class Context:
    """One request's (or one subscription's) view of the gateway: the caller and the services."""

    def __init__(self, gateway: Gateway, connection: HTTPConnection, session: Session | None,
                 cookie_token: bool = False) -> None:
        self.gateway = gateway
        self.connection = connection
        self.session = session
        self._clear_cookie = cookie_token and session is None  # a dead token came from the cookie
        self._new_token: str | None = None

    @property
    def client_address(self) -> str:
        """The peer's address (the key of per-address limits)."""
        return self.connection.client.host if self.connection.client else "unknown"

    async def call(self, service: str, method: str, path: str, json: Any = None,
                   headers: dict[str, str] | None = None, stale_ok: bool = False) -> Any:
        """Call a service's internal API through its resilience policy."""
        return await self.gateway.upstreams.call(service, method, path, json=json, headers=headers,
                                                 stale_ok=stale_ok)

    def sign_in(self, user: dto.Dto) -> dto.Dto:
        """Start the session auth just opened: a token in the cookie; the GraphQL User."""
        self.session = Session.of(user)
        self._new_token = self.gateway.signer.issue(self.session.claims(), self.gateway.clock.timestamp())
        self._clear_cookie = False
        return self.session.user()

    def sign_out(self) -> None:
        """Forget the session and delete the cookie."""
        self.session = None
        self._new_token = None
        self._clear_cookie = True

    def finish(self, response: Response) -> None:
        """Apply the cookie changes of this request to its answer."""
        if self._new_token is not None:
            self.gateway.cookies.set(response, self._new_token)
        elif self._clear_cookie:
            self.gateway.cookies.clear(response)


def require(context: Context, roles: tuple[Role, ...]) -> Session:
    """The caller's session when its role is one of ``roles``; else "Not authenticated" / "Not authorized"."""
    if context.session is None:
        raise ApiError(NOT_AUTHENTICATED, UNAUTHENTICATED)
    if context.session.role not in roles:
        raise ApiError(NOT_AUTHORIZED, FORBIDDEN)
    return context.session


Resolver = Callable[..., Awaitable[Any]]


def guarded(*roles: Role) -> Callable[[Callable[..., Awaitable[Any]]], Resolver]:
    """A resolver ``fn(context, me, **args)`` reachable only by ``roles`` (``me`` is the caller's session)."""
    def decorate(fn: Callable[..., Awaitable[Any]]) -> Resolver:
        @functools.wraps(fn)
        async def resolve(_: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
            context: Context = info.context
            return await fn(context, require(context, roles), **args)
        return resolve
    return decorate
