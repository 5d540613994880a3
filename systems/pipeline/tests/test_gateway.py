"""The edge: API keys and JWTs made by the system's commands, the dashboard page and its pushed updates."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.keys import KEYS_FILE, KeyRing, create_key, digest, signer
from pipeline.tests.conftest import Pipeline


def test_create_key_prints_a_key_and_keeps_only_its_digest(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["create-key", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    key = result.stdout.strip()
    assert key.startswith("pk_") and len(key) > 30
    assert (tmp_path / KEYS_FILE).read_text() == digest(key) + "\n"
    assert (tmp_path / KEYS_FILE).stat().st_mode & 0o777 == 0o600
    assert KeyRing(tmp_path).valid_key(key)


def test_a_key_made_while_running_is_accepted_at_once(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    first = create_key(tmp_path)
    assert ring.valid_key(first)
    second = create_key(tmp_path)
    assert ring.valid_key(second) and not ring.valid_key("pk_" + "x" * 32) and not ring.valid_key("")


def test_create_token_prints_a_jwt_the_gateway_accepts_until_it_expires(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["create-token", "--subject", "loader", "--days", "1",
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code == 0
    token = result.stdout.strip()
    ring = KeyRing(tmp_path)
    claims = signer(tmp_path).verify(token, now=claims_iat(token))
    assert claims is not None and claims["sub"] == "loader"
    assert ring.valid_token(token, claims_iat(token) + 3600)
    assert not ring.valid_token(token, claims_iat(token) + 2 * 86400)
    assert not KeyRing(tmp_path / "elsewhere").valid_token(token, claims_iat(token))


def claims_iat(token: str) -> float:
    """The token's issue time (read without verifying)."""
    import jwt

    return float(jwt.decode(token, options={"verify_signature": False})["iat"])


async def test_a_bearer_token_opens_the_api(pipeline: Pipeline, tmp_path: Path) -> None:
    token = signer(pipeline.runtime.data_dir).issue({"sub": "t"}, pipeline.clock.timestamp())
    answer = await pipeline.http.get("/analytics/users", headers={"x-api-key": "", "authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == {"total": 0, "perDay": []}


async def test_the_dashboard_page_takes_the_key_in_its_address(pipeline: Pipeline) -> None:
    answer = await pipeline.http.get(f"/dashboard?key={pipeline.key}", headers={"x-api-key": ""})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "EventSource" in answer.text and "http://" not in answer.text.replace("http://www.w3.org", "")


async def test_aggregates_and_users_are_pushed_to_the_dashboard_as_they_happen(pipeline: Pipeline) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    disconnect = asyncio.Event()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/dashboard/events", "raw_path": b"/dashboard/events",
             "query_string": f"key={pipeline.key}".encode(), "root_path": "", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("pipeline.test", 80)}

    async def receive() -> MutableMapping[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            received.put_nowait(message["body"].decode())

    stream = asyncio.create_task(pipeline.runtime.app(scope, receive, send))
    try:
        assert (await asyncio.wait_for(received.get(), 10)).startswith("retry: ")  # open, and subscribed
        assert (await pipeline.ingest([{"source": "s", "metric": "hr", "value": 61.5,
                                        "timestamp": "2026-01-01T00:00:00Z"}]))[0] == 202
        assert (await pipeline.create_user("dora", "dora@example.com"))[0] == 201
        events: dict[str, Any] = {}
        while len(events) < 2:
            chunk = await asyncio.wait_for(received.get(), 10)
            if chunk.startswith("event: "):
                name, data = chunk.split("\n")[:2]
                events[name.removeprefix("event: ")] = json.loads(data.removeprefix("data: "))
        assert events["minute"] == {"metric": "hr", "minute": "2026-01-01T00:00:00Z", "count": 1, "sum": 61.5,
                                    "min": 61.5, "max": 61.5, "mean": 61.5, "p95": 61.5}
        assert events["user"] == {"userId": 1, "day": pipeline.clock.now().date().isoformat()}
    finally:
        disconnect.set()
        await asyncio.wait_for(stream, 10)
