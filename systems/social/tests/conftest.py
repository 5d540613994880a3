"""Fixtures of social's tests: the system behind its edge, driven as the reference's clients drive it.

``social`` runs embedded here; ``acceptance/conftest.py`` runs it on both topologies.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.clock import VirtualClock
from junction.runtime import Runtime
from junction.testing import Distributed, running
from social.system import build

# The six users of generate-social-network.sh, in creation order (ids 1..6 on a fresh system).
NETWORK = [("Michael", "H."), ("Michael", "S."), ("Michaela", "J."), ("Kenny", "B."), ("Sonja", "H."), ("Emil", "E.")]


class Social:
    """A running social system driven through its edge."""

    def __init__(self, runtime: Runtime, distributed: Distributed | None = None) -> None:
        self.runtime = runtime
        self.distributed = distributed
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://social.test")

    async def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> httpx.Response:
        """One call through the edge."""
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        return await self.http.request(method, path, content=content, headers={"content-type": "application/json"})

    async def create(self, first: str, last: str) -> int:
        """POST /user/v1/users; the new id."""
        answer = await self.request("POST", "/user/v1/users", {"firstName": first, "lastName": last})
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    async def add(self, a: Any, b: Any) -> httpx.Response:
        """addFriend a → b."""
        return await self.request("POST", f"/friend/v1/users/{a}/commands/addFriend?friendId={b}", raw=b"")

    async def remove(self, a: Any, b: Any) -> httpx.Response:
        """removeFriend a → b."""
        return await self.request("POST", f"/friend/v1/users/{a}/commands/removeFriend?friendId={b}", raw=b"")

    async def friends(self, user: int) -> list[dict[str, Any]]:
        """GET /friend/v1/users/{user}/friends."""
        answer = await self.request("GET", f"/friend/v1/users/{user}/friends")
        assert answer.status_code == 200, answer.text
        rows: list[dict[str, Any]] = answer.json()
        return rows

    async def recommended(self, user: int) -> list[dict[str, Any]]:
        """recommendFriends(user) as the service answers it."""
        answer = await self.request("GET", f"/recommendation/v1/users/{user}/commands/recommendFriends")
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found

    async def rec(self, user: int) -> list[tuple[int, int]]:
        """recommendFriends(user) as (id, weight) pairs, in the answer's order."""
        return [(r["user"]["id"], r["weight"]) for r in await self.recommended(user)]

    async def mutual(self, a: int, b: int) -> list[int]:
        """findMutualFriends(a, b)'s ids, in the answer's order."""
        answer = await self.request("GET", f"/recommendation/v1/users/{a}/commands/findMutualFriends?friendId={b}")
        assert answer.status_code == 200, answer.text
        return [u["id"] for u in answer.json()]

    async def heads(self) -> dict[str, int]:
        """The log head of the user and friend services: what they have recorded."""
        return {name: await self.runtime.service(name).store.head() for name in ("user", "friend")}

    async def network(self) -> list[int]:
        """S1 and S2's state: the six users and six friendships of the generator; the ids MH, MS, MJ, KB, SH, EE."""
        ids = [await self.create(first, last) for first, last in NETWORK]
        mh, ms, mj, kb, sh, ee = ids
        for a, b in [(mh, ms), (ms, kb), (kb, sh), (kb, ee), (mh, ee), (kb, mj)]:
            answer = await self.add(a, b)
            assert answer.status_code == 201, answer.text
        return ids

    async def settle(self) -> None:
        """Let the recommendation graph catch up with every event."""
        await self.runtime.settle()


@contextlib.asynccontextmanager
async def open_social(data_dir: Path, distributed: Distributed | None = None) -> AsyncIterator[Social]:
    """The social system on the topology, stopped afterwards."""
    async with running(build(), data_dir, distributed, clock=VirtualClock()) as runtime:
        social = Social(runtime, distributed)
        try:
            yield social
        finally:
            await social.http.aclose()


@pytest.fixture
async def social(tmp_path: Path) -> AsyncIterator[Social]:
    """The social system, embedded."""
    async with open_social(tmp_path / "data") as running_social:
        yield running_social
