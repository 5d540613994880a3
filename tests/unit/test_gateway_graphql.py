"""The GraphQL block (document cache, error codes, the HTTP endpoint's rules) and the live feed."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from ariadne import MutationType, QueryType
from graphql import GraphQLError, GraphQLSchema
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from junction.clock import VirtualClock
from junction.errors import HttpError
from junction.gateway.graphql import (
    CODES,
    ApiError,
    DocumentCache,
    GraphQLEndpoint,
    describe,
    format_error,
    load_schema,
    same_origin,
)
from junction.gateway.live import Broadcast, LiveFeed
from junction.gateway.resilience import CircuitOpen, RateLimited
from junction.runtime import Runtime
from junction.transport import UpstreamError
from tests.unit import toy

SDL = """
type Query { hello(name: String): String!  boom: String  refused(status: Int!): String }
type Mutation { bump: Int! }
type Subscription { ticks: Int! }
"""


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> GraphQLSchema:
    directory = tmp_path_factory.mktemp("schema")
    (directory / "api.graphql").write_text(SDL)
    query, mutation = QueryType(), MutationType()
    query.set_field("hello", lambda *_, name="world": f"hello {name}")
    query.set_field("boom", lambda *_: 1 / 0)

    def refused(*_: Any, status: int) -> str:
        raise UpstreamError("thing not found" if status == 404 else "nope", status=status)

    query.set_field("refused", refused)
    mutation.set_field("bump", lambda _, info: info.context.bump())
    return load_schema(directory, query, mutation)


@dataclasses.dataclass
class Ctx:
    """A context that counts mutations and sets a header on the answer."""

    bumps: int = 0

    def bump(self) -> int:
        self.bumps += 1
        return self.bumps

    def finish(self, response: Response) -> None:
        response.headers["x-finished"] = "yes"


@pytest.fixture
def endpoint(schema: GraphQLSchema) -> tuple[GraphQLEndpoint, Ctx]:
    ctx = Ctx()

    async def context(request: Any, payload: Any) -> Ctx:
        return ctx

    return GraphQLEndpoint(schema, context, cache_size=2), ctx


@pytest.fixture
async def client(endpoint: tuple[GraphQLEndpoint, Ctx]) -> Any:
    app = Starlette(routes=endpoint[0].routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        yield http


def test_documents_are_parsed_and_validated_once_per_text(schema: GraphQLSchema) -> None:
    cache = DocumentCache(schema, max_size=2)
    first = cache.get("{hello}")
    assert cache.get("{hello}") is first and (cache.hits, cache.misses) == (1, 1)
    invalid = cache.get("{nope}")
    assert invalid.document is None and "Cannot query field 'nope'" in invalid.errors[0].message
    assert cache.get("{nope}") is invalid  # rejections are cached too
    cache.get("{boom}")
    assert len(cache) == 2 and cache.get("{hello}") is not first  # least recently used went first
    assert cache.get("{").errors[0].message.startswith("Syntax Error")


@pytest.mark.parametrize(("error", "message", "code"), [
    (ApiError("Not authorized", "FORBIDDEN"), "Not authorized", "FORBIDDEN"),
    (UpstreamError("vehicle not found", status=404), "vehicle not found", "NOT_FOUND"),
    (UpstreamError("validation failed", status=422), "validation failed", "BAD_USER_INPUT"),
    (UpstreamError("bad", status=400), "bad", "BAD_USER_INPUT"),
    (UpstreamError("invalid username or password", status=401), "invalid username or password", "UNAUTHENTICATED"),
    (HttpError("customer 1 not authorized to stop rental 2", status=403), "customer 1 not authorized to stop rental 2",
     "FORBIDDEN"),
    (UpstreamError("payment already confirmed", status=409), "payment already confirmed", "CONFLICT"),
    (UpstreamError("internal server error", status=500), "internal server error", "INTERNAL"),
    (CircuitOpen("circuit open"), "service unavailable", "INTERNAL"),
    (TimeoutError(), "service unavailable", "INTERNAL"),
    (KeyError("secret detail"), "internal server error", "INTERNAL"),
])
def test_errors_keep_service_texts_and_get_a_code(error: Exception, message: str, code: str) -> None:
    assert describe(error) == (message, {"code": code})
    assert code in CODES


def test_rate_limits_say_when_to_retry() -> None:
    assert describe(RateLimited(2.04)) == ("too many requests, try again later",
                                           {"code": "BAD_USER_INPUT", "retryAfter": 2.0})


def test_format_error_keeps_locations_and_path() -> None:
    wrapped = GraphQLError("ignored", path=["a", 0], original_error=UpstreamError("thing not found", status=404))
    assert format_error(wrapped) == {"message": "thing not found", "path": ["a", 0],
                                     "extensions": {"code": "NOT_FOUND"}}
    assert format_error(GraphQLError("Syntax Error"))["extensions"] == {"code": "BAD_USER_INPUT"}


async def test_queries_and_mutations_over_post(client: httpx.AsyncClient, endpoint: tuple[Any, Ctx]) -> None:
    answer = await client.post("/graphql", json={"query": "query($n:String){hello(name:$n)}", "variables": {"n": "x"}})
    assert answer.status_code == 200 and answer.json() == {"data": {"hello": "hello x"}}
    assert answer.headers["x-finished"] == "yes"
    assert (await client.post("/graphql", json={"query": "mutation{bump}"})).json() == {"data": {"bump": 1}}
    two = "query A{hello} query B{hello(name:\"b\")}"
    assert (await client.post("/graphql", json={"query": two, "operationName": "B"})).json() == {
        "data": {"hello": "hello b"}}
    assert (await client.post("/graphql", json={"query": two})).json()["errors"][0]["extensions"]["code"] == (
        "BAD_USER_INPUT")


async def test_failures_are_errors_with_codes_never_traces(client: httpx.AsyncClient,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    answer = (await client.post("/graphql", json={"query": "{boom hello}"})).json()
    assert answer["data"] == {"boom": None, "hello": "hello world"}
    assert answer["errors"] == [{"message": "internal server error", "locations": [{"line": 1, "column": 2}],
                                 "path": ["boom"], "extensions": {"code": "INTERNAL"}}]
    refused = (await client.post("/graphql", json={"query": "{refused(status:404)}"})).json()
    assert refused["errors"][0]["message"] == "thing not found"
    assert refused["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
    invalid = await client.post("/graphql", json={"query": "{nope}"})
    assert invalid.status_code == 200 and invalid.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    coercion = (await client.post("/graphql", json={"query": "query($n:String){hello(name:$n)}",
                                                     "variables": {"n": 5}})).json()
    assert coercion["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(("method", "headers", "body", "status"), [
    ("POST", {"content-type": "application/x-www-form-urlencoded"}, b"query=mutation{bump}", 415),
    ("POST", {"content-type": "text/plain"}, b'{"query":"mutation{bump}"}', 415),
    ("POST", {"content-type": "application/json", "origin": "https://evil.example"}, b'{"query":"mutation{bump}"}',
     403),
    ("POST", {"content-type": "application/json", "origin": "null"}, b'{"query":"mutation{bump}"}', 403),
    ("GET", {}, b"", 405),
    ("POST", {"content-type": "application/json"}, b"not json", 400),
    ("POST", {"content-type": "application/json"}, b'{"query": 5}', 400),
    ("POST", {"content-type": "application/json"}, b'[{"query":"mutation{bump}"}]', 400),
    ("POST", {"content-type": "application/json"}, b'{"query":"mutation{bump}","variables":[1]}', 400),
    ("POST", {"content-type": "application/json"}, b" " * (1 << 20) + b"{}", 413),
])
async def test_requests_that_cannot_act(client: httpx.AsyncClient, endpoint: tuple[Any, Ctx], method: str,
                                        headers: dict[str, str], body: bytes, status: int) -> None:
    response = await client.request(method, "/graphql", headers=headers, content=body)
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert endpoint[1].bumps == 0


async def test_subscriptions_are_not_served_over_post(client: httpx.AsyncClient) -> None:
    answer = (await client.post("/graphql", json={"query": "subscription{ticks}"})).json()
    assert answer["errors"][0]["message"] == "subscription operations are not served here"


def test_same_origin() -> None:
    from starlette.datastructures import Headers

    assert same_origin(Headers({"host": "a.test:4000"}))
    assert same_origin(Headers({"host": "a.test:4000", "origin": "http://a.test:4000"}))
    assert not same_origin(Headers({"host": "a.test:4000", "origin": "http://a.test:4001"}))
    assert same_origin(Headers({"host": "a.test", "origin": "http://ui.test"}), allowed={"http://ui.test"})


async def test_a_failing_context_answers_503_without_details(schema: GraphQLSchema) -> None:
    async def context(request: Request, payload: Any) -> None:
        raise UpstreamError("auth exploded", status=500)

    app = Starlette(routes=GraphQLEndpoint(schema, context).routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as http:
        response = await http.post("/graphql", json={"query": "{hello}"})
    assert response.status_code == 503 and response.json()["errors"][0]["message"] == "internal server error"


# -- the live feed -------------------------------------------------------------------------------------
async def test_broadcast_fans_out_and_drops_the_oldest_for_slow_subscribers() -> None:
    broadcast: Broadcast[int] = Broadcast(max_pending=3)
    evens = broadcast.subscribe(lambda n: n % 2 == 0)
    every = broadcast.subscribe()
    for n in range(6):
        broadcast.publish(n)
    assert [await anext(evens) for _ in range(3)] == [0, 2, 4]
    assert [await anext(every) for _ in range(3)] == [3, 4, 5] and every.dropped == 3
    await every.aclose()
    assert broadcast.subscribers == 1
    waiting = asyncio.create_task(anext(evens))
    await asyncio.sleep(0)
    await evens.aclose()  # a pending wait ends the iteration
    with pytest.raises(StopAsyncIteration):
        await waiting


async def test_live_feed_tails_logs_once_for_all_subscribers(tmp_path: Path) -> None:
    async with Runtime(toy.system(), tmp_path, clock=VirtualClock()) as runtime:
        orders = runtime.client("orders")
        await orders.post("/orders", json={"customer": "old", "seq": 0})  # before: not delivered
        feed = LiveFeed(runtime.follower, runtime.spawn)
        alice = await feed.subscribe("orders", where=lambda e: e.data["customer"] == "alice")
        everyone = await feed.subscribe("orders", types={"ToyOrderPlaced"})
        nothing = await feed.subscribe("orders", types={"SomethingElse"})
        assert feed.subscribers("orders") == 3
        for customer, seq in (("bob", 1), ("alice", 2)):
            await orders.post("/orders", json={"customer": customer, "seq": seq})
        assert [(await asyncio.wait_for(anext(everyone), 5)).data["seq"] for _ in range(2)] == [1, 2]
        assert (await asyncio.wait_for(anext(alice), 5)).data["seq"] == 2
        assert not nothing._items
        assert [name for name in runtime._tasks if name.startswith("live/")] == ["live/orders"]
