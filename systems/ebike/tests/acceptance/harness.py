"""The whole ebike system behind its gateway, on a virtual clock, driven through GraphQL.

Clients talk to the runtime's public ASGI app (``/graphql``) in-process with httpx, each with its
own cookie jar, as browsers would. The RSA key pair is made once per test session, and auth's
argon2 parameters are lowered for speed (hash cost is auth's concern, tested in test_auth.py):
everything else runs as in production.

The stack runs on either topology: ``embedded`` (SQLite stores, consumers reading the source
service's log) or ``distributed`` (PostgreSQL stores, and Kafka topics fed by each service's outbox
relay, all in this process): ``junction.testing`` runs a system on either.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from ebike.gateway.app import Gateway, Settings
from ebike.services import auth
from ebike.system import build
from junction.clock import VirtualClock
from junction.gateway.sessions import KeyPair
from junction.runtime import Runtime
from junction.testing import Distributed, running

PASSWORD = "password123"
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
HOST = "ebike.test"


class GraphQLError(AssertionError):
    """A GraphQL answer had errors where data was expected."""


class Client:
    """One browser: a cookie jar and a client address."""

    def __init__(self, app: Any, address: str = "127.0.0.1") -> None:
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        self.http = httpx.AsyncClient(transport=transport, base_url=f"http://{HOST}")
        self.id: str | None = None

    async def gql(self, query: str, headers: dict[str, str] | None = None, **variables: Any) -> dict[str, Any]:
        """POST one operation; the decoded answer."""
        response = await self.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        answer: dict[str, Any] = response.json()
        return answer

    async def data(self, query: str, **variables: Any) -> Any:
        """The value of the operation's only top-level field; GraphQLError when it failed."""
        answer = await self.gql(query, **variables)
        if answer.get("errors"):
            raise GraphQLError(f"{query}: {answer['errors']}")
        (value,) = answer["data"].values()
        return value

    async def error(self, query: str, **variables: Any) -> tuple[str, str]:
        """The (message, code) of the first error of an operation that must fail."""
        answer = await self.gql(query, **variables)
        assert answer.get("errors"), f"{query} succeeded: {answer}"
        first = answer["errors"][0]
        return first["message"], first["extensions"]["code"]

    @property
    def token(self) -> str | None:
        """The session cookie, if any."""
        return self.http.cookies.get("jwt")

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()


@dataclasses.dataclass
class Stack:
    """A running ebike: runtime, clock, gateway, and clients made on demand."""

    runtime: Runtime
    clock: VirtualClock
    gateway: Gateway
    clients: list[Client] = dataclasses.field(default_factory=list)

    def client(self, address: str = "127.0.0.1") -> Client:
        """A new anonymous browser."""
        client = Client(self.runtime.app, address)
        self.clients.append(client)
        return client

    async def settle(self) -> None:
        """Let every consumer catch up."""
        await self.runtime.settle()

    async def advance(self, seconds: float) -> None:
        """Move platform time; timers and consumers run on the way."""
        await self.clock.advance(seconds)

    async def admin(self, username: str = "admin1") -> Client:
        """The first admin, registered anonymously (bootstrap)."""
        client = self.client()
        client.id = (await client.data(
            "mutation($u:String!,$p:String!){registerAdmin(username:$u,password:$p){id}}",
            u=username, p=PASSWORD))["id"]
        return client

    async def customer(self, username: str, credit: int = 0, admin: Client | None = None,
                       address: str = "127.0.0.1") -> Client:
        """A registered customer (with a confirmed payment of ``credit`` cents, made by ``admin``)."""
        client = self.client(address)
        client.id = (await client.data(
            "mutation($u:String!,$p:String!){registerCustomer(username:$u,password:$p){id}}",
            u=username, p=PASSWORD))["id"]
        if credit:
            assert admin is not None, "confirming a payment needs an admin"
            await confirmed_payment(client, admin, credit)
        await self.settle()
        return client


async def confirmed_payment(customer: Client, admin: Client, amount: int) -> str:
    """A payment of ``amount`` that the admin confirmed; its id."""
    payment = await customer.data("mutation($a:Int!){createPayment(amount:$a){id}}", a=amount)
    await admin.data("mutation($id:ID!){confirmPayment(id:$id){status}}", id=payment["id"])
    return str(payment["id"])


@contextlib.contextmanager
def fast_hashing() -> Iterator[None]:
    """Cheap argon2 parameters for auth while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "hasher", FAST_HASHER)
        patch.setattr(auth, "_decoy_hash", lambda: FAST_HASHER.hash("decoy"))
        yield


@contextlib.asynccontextmanager
async def open_stack(data_dir: Path, settings: Settings,
                     distributed: Distributed | None = None) -> AsyncIterator[Stack]:
    """Start ebike with its gateway configured by ``settings`` (embedded, or on ``distributed``'s
    PostgreSQL and Kafka); stop it afterwards."""
    made: list[Gateway] = []

    def edge(runtime: Runtime) -> list[Any]:
        made.append(Gateway(runtime, settings=settings))
        return made[-1].routes()

    clock = VirtualClock()
    system = dataclasses.replace(build(), gateway=edge)
    with fast_hashing():
        async with running(system, data_dir, distributed, clock=clock) as runtime:
            stack = Stack(runtime, clock, made[0])
            try:
                yield stack
            finally:
                for client in stack.clients:
                    await client.close()


def settings_with_keys(keys_dir: Path, **overrides: Any) -> Settings:
    """Gateway settings whose key pair lives in ``keys_dir`` (made there once)."""
    private, public = keys_dir / "jwt-key.pem", keys_dir / "jwt-key.pub"
    KeyPair.load_or_create(private, public)
    return Settings(private_key=private, public_key=public, **overrides)
