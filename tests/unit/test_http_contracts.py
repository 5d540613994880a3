"""Route options for public contracts that speak their own language: a documented answer to an invalid body
(``Service.route(invalid=...)``) and plain-text errors (``Service(errors=text_errors)``); bodies over the limit
are refused without being read whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from junction.errors import Conflict, NotFound
from junction.http import MAX_BODY, build_app
from junction.http_errors import ErrorFormat, json_errors, spring_errors, text_errors
from junction.service import Service
from junction.uow import UnitOfWork


class Item(BaseModel):
    model_config = ConfigDict(strict=True)
    name: str
    count: int


def routes(errors: ErrorFormat) -> Service:
    service = Service("items", worker=1, errors=errors)

    @service.route("POST", "/documented", invalid=Conflict("Item creation failed"))
    async def documented(body: Item) -> dict[str, str]:
        return {"created": body.name}

    @service.route("POST", "/plain")
    async def plain(body: Item) -> dict[str, str]:
        raise NotFound(f"no shelf for {body.name}")

    return service


@pytest.fixture(params=[True, False], ids=["text", "json"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    service = routes(text_errors if request.param else json_errors)

    def make_uow() -> UnitOfWork:
        raise AssertionError("no route here takes a unit of work")

    app = build_app(service.routes, make_uow)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://items") as http:
        http.headers["x-text"] = str(request.param)
        yield http


def expected(http: httpx.AsyncClient, status: int, message: str, answer: httpx.Response) -> None:
    assert answer.status_code == status
    if http.headers["x-text"] == "True":
        assert (answer.text, answer.headers["content-type"]) == (message, "text/plain; charset=utf-8")
    else:
        assert answer.json()["error"] == message


async def test_an_invalid_body_gets_the_routes_documented_answer(client: httpx.AsyncClient) -> None:
    for body in ({"name": "a"}, {"name": "a", "count": "1"}, [1], None):
        expected(client, 409, "Item creation failed", await client.post("/documented", json=body))
    assert (await client.post("/documented", json={"name": "a", "count": 1})).json() == {"created": "a"}


async def test_errors_in_the_services_language(client: httpx.AsyncClient) -> None:
    expected(client, 404, "no shelf for a", await client.post("/plain", json={"name": "a", "count": 1}))
    expected(client, 400, "invalid request body", await client.post("/plain", content=b"{nope"))
    answer = await client.post("/plain", json={"name": "a"})
    assert answer.status_code == 422  # no documented answer: the platform's own


async def test_a_body_over_the_limit_is_refused_declared_or_streamed(client: httpx.AsyncClient) -> None:
    big = b"x" * (MAX_BODY + 1)
    expected(client, 413, "request body too large", await client.post("/plain", content=big))

    async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted as it comes
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"x" * 65536

    expected(client, 413, "request body too large", await client.post("/plain", content=chunks()))


async def test_spring_errors_answer_spring_boots_body_for_every_kind_of_error() -> None:
    service = routes(spring_errors)

    def make_uow() -> UnitOfWork:
        raise AssertionError("no route here takes a unit of work")

    app = build_app(service.routes, make_uow, errors=spring_errors)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://items") as http:
        for answer, status, reason, message in [
            (await http.post("/plain", json={"name": "a", "count": 1}), 404, "Not Found", "no shelf for a"),
            (await http.post("/plain", content=b"{"), 400, "Bad Request", "invalid request body"),
            (await http.get("/nowhere"), 404, "Not Found", "not found"),
        ]:
            body = answer.json()
            assert answer.status_code == status
            assert set(body) == {"timestamp", "status", "error", "message", "path"}
            assert (body["status"], body["error"], body["message"]) == (status, reason, message)
        assert body["path"] == "/nowhere"
