"""Bad input at the edge: each answers its documented status in Spring's error shape, never a 500, and
nothing is recorded (the user and friend logs stay where they were)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from social.tests.conftest import Social

SPRING_ERROR = {"timestamp", "status", "error", "message", "path"}
CONVERT = "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'"

# (method, path, body (JSON data) or raw bytes, status, a part of the message)
CASES: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/friend/v1/users/abc/commands/addFriend?friendId=1", b"", 400, CONVERT),
    ("POST", "/friend/v1/users/1/commands/addFriend?friendId=x1", b"", 400, CONVERT),
    ("POST", "/friend/v1/users/1/commands/addFriend?friendId=", b"", 400, CONVERT),
    ("POST", "/friend/v1/users/1.5/commands/addFriend?friendId=2", b"", 400, CONVERT),
    ("POST", "/friend/v1/users/99999999999999999999/commands/addFriend?friendId=2", b"", 400, CONVERT),
    ("POST", "/friend/v1/users/1/commands/addFriend", b"", 400, "'friendId'"),
    ("POST", "/friend/v1/users/1/commands/addFriend?friendId=1", b"", 400, "A user cannot befriend oneself"),
    ("POST", "/friend/v1/users/1/commands/addFriend?friendId=424242", b"", 404, "do not exist"),
    ("POST", "/friend/v1/users/424242/commands/addFriend?friendId=1", b"", 404, "do not exist"),
    ("POST", "/friend/v1/users/1/commands/addFriend?friendId=2", b"", 409, "The friendship already exists"),
    ("POST", "/friend/v1/users/2/commands/addFriend?friendId=1", b"", 409, "The friendship already exists"),
    ("POST", "/friend/v1/users/1/commands/removeFriend?friendId=3", b"", 404, "The friendship does not exist"),
    ("POST", "/friend/v1/users/1/commands/removeFriend", b"", 400, "'friendId'"),
    ("GET", "/friend/v1/users/abc/friends", None, 400, CONVERT),
    ("GET", "/friend/v1/friends/777", None, 404, "The friendship does not exist"),
    ("GET", "/user/v1/users/abc", None, 400, CONVERT),
    ("GET", "/user/v1/users/777", None, 404, "The user does not exist"),
    ("POST", "/user/v1/users", b"{not json", 400, "invalid request body"),
    ("POST", "/user/v1/users", b"", 400, ""),
    ("POST", "/user/v1/users", [], 400, "firstName"),
    ("POST", "/user/v1/users", {"firstName": "Ann"}, 400, "firstName"),
    ("POST", "/user/v1/users", {"firstName": 5, "lastName": "B"}, 400, "firstName"),
    ("POST", "/user/v1/users", {"firstName": None, "lastName": "B"}, 400, "firstName"),
    ("POST", "/user/v1/users", {"firstName": "A" * 256, "lastName": "B"}, 400, "firstName"),
    ("PUT", "/user/v1/users/1", {"id": 2, "firstName": "A", "lastName": "B"}, 400, "must match"),
    ("PUT", "/user/v1/users/1", {"firstName": "A", "lastName": "B"}, 400, "firstName"),
    ("PUT", "/user/v1/users/1", {"id": "1", "firstName": "A", "lastName": "B"}, 400, "firstName"),
    ("PUT", "/user/v1/users/777", {"id": 777, "firstName": "A", "lastName": "B"}, 404, "The user does not exist"),
    ("PUT", "/user/v1/users/x", {"id": 1, "firstName": "A", "lastName": "B"}, 400, CONVERT),
    ("PUT", "/user/v1/users/1", b"[1,", 400, "invalid request body"),
    ("GET", "/recommendation/v1/users/abc/commands/recommendFriends", None, 400, CONVERT),
    ("GET", "/recommendation/v1/users/1/commands/findMutualFriends", None, 400, "'friendId'"),
    ("GET", "/recommendation/v1/users/1/commands/findMutualFriends?friendId=b", None, 400, CONVERT),
    ("GET", "/recommendation/v1/graph?limit=-1", None, 400, "limit"),
    ("GET", "/user/v1/nothing/here", None, 404, "not found"),
    ("DELETE", "/user/v1/users/1", None, 405, "method not allowed"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), CASES,
                         ids=[f"{c[0]} {c[1]} {str(c[2])[:20]}" for c in CASES])
async def test_bad_input_gets_its_status_and_records_nothing(social: Social, method: str, path: str, body: Any,
                                                           status: int, message: str) -> None:
    for first, last in [("Ann", "A."), ("Bob", "B."), ("Cid", "C.")]:
        await social.create(first, last)
    assert (await social.add(1, 2)).status_code == 201
    await social.settle()
    heads = await social.heads()
    raw = body if isinstance(body, bytes) else None
    answer = await social.request(method, path, None if raw is not None else body, raw=raw)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == SPRING_ERROR
    assert error["status"] == status and message in error["message"]
    await social.settle()
    assert await social.heads() == heads
    assert await social.rec(3) == []  # the graph is as it was: 1-2 only


async def test_racing_duplicates_either_way_make_one_friendship(social: Social) -> None:
    users = [await social.create(f"U{n}", "X") for n in range(4)]
    pairs = [(a, b) for a in users for b in users if a != b] * 3  # every pair, both ways, three times
    answers = await asyncio.gather(*(social.add(a, b) for a, b in pairs))
    assert sorted({a.status_code for a in answers}) == [201, 409]
    assert sum(a.status_code == 201 for a in answers) == 6  # C(4, 2) friendships, one each
    await social.settle()
    for user in users:
        assert await social.rec(user) == []  # everyone is everyone's friend: nobody left to recommend


async def test_remove_works_from_either_side_and_once(social: Social) -> None:
    a, b, c = [await social.create(f"U{n}", "X") for n in range(3)]
    await social.add(a, b)
    await social.add(b, c)
    await social.settle()
    assert await social.rec(a) == [(c, 1)]
    assert (await social.remove(b, a)).status_code == 204  # asked by the other side
    assert (await social.remove(a, b)).status_code == 404
    await social.settle()
    assert await social.rec(a) == []
    assert await social.friends(a) == []
    assert (await social.add(b, a)).status_code == 201  # befriending again is a new friendship
    await social.settle()
    assert await social.rec(a) == [(c, 1)]
