"""The ebike gateway: GraphQL at ``/graphql`` (HTTP and WebSocket) and the web UI's routes at ``/``.

Settings come from the environment (spec section 9): ``JWT_PRIVATE_KEY_PATH`` and
``JWT_PUBLIC_KEY_PATH`` (a pair is generated there on first start when absent; default
``<data dir>/keys/jwt-key.pem`` and ``.pub``), ``SECURE_COOKIES=true`` for ``Secure`` cookies, and
``EBIKE_ALLOWED_ORIGINS`` (comma-separated) for a UI served from another origin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from ebike.gateway.live import CustomerTracker, VehicleTracker, subscription
from ebike.gateway.resolvers import BINDABLES
from ebike.gateway.session import Context, Session
from ebike.gateway.web import placeholder_routes
from junction.gateway.graphql import BAD_USER_INPUT, ApiError, GraphQLEndpoint, load_schema
from junction.gateway.live import LiveFeed
from junction.gateway.resilience import RateLimited, RateLimiter
from junction.gateway.sessions import CookiePolicy, KeyPair, TokenSigner, token_from
from junction.gateway.upstreams import Upstreams
from junction.runtime import Runtime
from junction.transport import UpstreamError

SCHEMA_DIR = Path(__file__).parent / "schema"
TOO_MANY_LOGINS = "too many login attempts, try again later"

WebRoutes = Callable[["Gateway"], list[BaseRoute]]


@functools.cache
def schema() -> GraphQLSchema:
    """The executable schema (built once per process)."""
    return load_schema(SCHEMA_DIR, *BINDABLES, subscription)


@dataclass(frozen=True)
class Settings:
    """Where the keys are, how cookies are written, and the login limits."""

    private_key: Path
    public_key: Path
    secure_cookies: bool = False
    allowed_origins: tuple[str, ...] = ()
    logins_per_username: int = 5  # attempts, then one more every username_window / attempts seconds
    username_window: float = 300.0
    logins_per_address: int = 20
    address_window: float = 60.0

    @classmethod
    def from_env(cls, data_dir: Path, env: Mapping[str, str] = os.environ) -> Settings:
        """Read the environment; keys default to ``<data_dir>/keys``."""
        keys = data_dir / "keys"
        origins = tuple(o.strip() for o in env.get("EBIKE_ALLOWED_ORIGINS", "").split(",") if o.strip())
        return cls(private_key=Path(env.get("JWT_PRIVATE_KEY_PATH") or keys / "jwt-key.pem"),
                   public_key=Path(env.get("JWT_PUBLIC_KEY_PATH") or keys / "jwt-key.pub"),
                   secure_cookies=env.get("SECURE_COOKIES", "").lower() == "true", allowed_origins=origins)


class LoginLimits:
    """Token buckets per username and per client address, on the platform clock."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.usernames = RateLimiter(runtime.clock, settings.logins_per_username / settings.username_window,
                                     settings.logins_per_username)
        self.addresses = RateLimiter(runtime.clock, settings.logins_per_address / settings.address_window,
                                     settings.logins_per_address)

    def take(self, username: str, address: str) -> None:
        """Spend one attempt of both buckets, or refuse with "too many login attempts"."""
        try:
            self.addresses.take(address)
            self.usernames.take(username.casefold())
        except RateLimited as limited:
            raise ApiError(TOO_MANY_LOGINS, BAD_USER_INPUT, retryAfter=round(limited.retry_after, 1)) from None


class Gateway:
    """One runtime's gateway: sessions, upstream policies, live trackers and the GraphQL endpoint."""

    def __init__(self, runtime: Runtime, settings: Settings | None = None, web: WebRoutes = placeholder_routes) -> None:
        self.runtime = runtime
        self.clock = runtime.clock
        self.settings = settings or Settings.from_env(runtime.data_dir)
        self.cookies = CookiePolicy(secure=self.settings.secure_cookies)
        self.upstreams = Upstreams(runtime.transport, runtime.clock)
        self.login_limits = LoginLimits(runtime, self.settings)
        self.feed = LiveFeed(runtime.follower, runtime.spawn)
        self.vehicles = VehicleTracker(self)
        self.customers = CustomerTracker(self)
        self.graphql = GraphQLEndpoint(schema(), self.context, allowed_origins=self.settings.allowed_origins)
        self.web = web

    @functools.cached_property
    def signer(self) -> TokenSigner:
        """The token signer; keys are read (or generated) on first use, not when a CLI builds the system."""
        return TokenSigner(KeyPair.load_or_create(self.settings.private_key, self.settings.public_key))

    def routes(self) -> list[BaseRoute]:
        """GraphQL at /graphql, then the web UI's routes."""
        return [*self.graphql.routes("/graphql"), *self.web(self)]

    async def context(self, connection: HTTPConnection, payload: dict[str, Any] | None = None) -> Context:
        """The caller of a request or WebSocket: its live session, or anonymous."""
        params = connection.scope.get("connection_params") or {}  # a WebSocket's connection_init payload
        authorization = connection.headers.get("authorization") or str(
            params.get("Authorization") or params.get("authorization") or "")
        bearer = token_from({"authorization": authorization}, {})
        cookie = connection.cookies.get(self.cookies.name) or None
        token = bearer or cookie  # the header wins over the cookie
        from_cookie = bearer is None and cookie is not None
        session = await self.session(token) if token else None
        return Context(self, connection, session, cookie_token=from_cookie)

    async def session(self, token: str) -> Session | None:
        """The live session a token names, or None (bad signature, expired, logged out, another user)."""
        claims = self.signer.verify(token, self.clock.timestamp())
        if claims is None or not isinstance(claims.get("sessionId"), str):
            return None
        try:
            user = await self.upstreams.call("auth", "GET", "/auth", headers={"X-Session-ID": claims["sessionId"]})
        except UpstreamError as error:
            if error.status >= 500:
                raise
            return None  # "invalid session": unknown or logged out
        if user.get("id") != claims.get("id"):
            return None
        return Session.of(user)


def gateway_routes(web: WebRoutes = placeholder_routes) -> Callable[[Runtime], list[BaseRoute]]:
    """``System.gateway`` for ebike: the gateway's routes on a runtime, with ``web`` serving ``/``."""
    def routes(runtime: Runtime) -> list[BaseRoute]:
        return Gateway(runtime, web=web).routes()
    return routes
