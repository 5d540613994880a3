"""The reference's data generators, their intent kept and their defects gone (spec section 4).

* ``network``: generate-social-network.sh, the six users and six friendships of scenario S3;
* ``serial``: generate-serial.sh, the 15 names of names-15.txt (all of them: the reference lost the last
  line) and 300 random friendships (the reference exited before making any), self and duplicate pairs
  skipped;
* ``parallel``: generate-parallel.sh, 100 users made concurrently, the chain id1 → id2 → … → id100 over the
  ids actually created (not "the first line plus i"), and 500 random pairs among them.

Each talks to the edge over HTTP like the scripts did, waits for the services' health first, and ends with
the queries the scripts printed: friends, mutual friends and recommendations.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

NETWORK = [("Michael", "H."), ("Michael", "S."), ("Michaela", "J."), ("Kenny", "B."), ("Sonja", "H."), ("Emil", "E.")]
NETWORK_FRIENDSHIPS = [(0, 1), (1, 3), (3, 4), (3, 5), (0, 5), (3, 2)]  # MH→MS, MS→KB, KB→SH, KB→EE, MH→EE, KB→MJ
NAMES_15 = ["Andrew Rutherford", "Anna Kowalski", "Bruno Lehmann", "Chloe Martin", "Daniel Okafor",
            "Elena Petrova", "Felix Wagner", "Grace Liu", "Hugo Moreau", "Isabel Costa", "Jonas Berg",
            "Kira Tanaka", "Lucas Silva", "Maya Cohen", "Rachel Russell"]
FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun"]
LAST = ["Abbott", "Brandt", "Castro", "Dahl", "Eze", "Fischer", "Gomez", "Hale", "Ito", "Jensen"]
NAMES_100 = [f"{first} {last}" for last in LAST for first in FIRST]

Progress = Callable[[str, int, int], None]  # (step, done, total)


def _quiet(step: str, done: int, total: int) -> None:
    """No progress display."""


@dataclass
class Generated:
    """What a generator made and what its closing queries answered."""

    users: list[int] = field(default_factory=list)
    friendships: list[tuple[int, int]] = field(default_factory=list)
    skipped: int = 0  # random pairs left out: self, already friends either way, or refused
    queries: dict[str, Any] = field(default_factory=dict)


async def wait_until_healthy(http: httpx.AsyncClient, attempts: int = 60, pause: float = 1.0) -> None:
    """Wait until user, friend and recommendation answer their health check (as the scripts did)."""
    for _ in range(attempts):
        try:
            answers = [await http.get(f"/{svc}/actuator/health") for svc in ("user", "friend", "recommendation")]
            if all(a.status_code == 200 and a.json().get("status") == "UP" for a in answers):
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(pause)
    raise RuntimeError(f"the services at {http.base_url} did not become healthy")


async def create_user(http: httpx.AsyncClient, name: str) -> int:
    """POST one user ("First Last"); its id."""
    first, _, last = name.partition(" ")
    answer = await http.post("/user/v1/users", json={"firstName": first, "lastName": last})
    answer.raise_for_status()
    return int(answer.json()["id"])


async def befriend(http: httpx.AsyncClient, a: int, b: int) -> bool:
    """addFriend a → b; False when the service refused it (a duplicate raced us)."""
    answer = await http.post(f"/friend/v1/users/{a}/commands/addFriend", params={"friendId": b})
    if answer.status_code in (400, 404, 409):
        return False
    answer.raise_for_status()
    return True


async def _queries(http: httpx.AsyncClient, me: int, other: int) -> dict[str, Any]:
    """The scripts' closing queries for ``me`` (and ``other`` for mutual friends)."""
    friends = (await http.get(f"/friend/v1/users/{me}/friends")).json()
    mutual = (await http.get(f"/recommendation/v1/users/{me}/commands/findMutualFriends",
                             params={"friendId": other})).json()
    recommended = (await http.get(f"/recommendation/v1/users/{me}/commands/recommendFriends")).json()
    return {"user": me, "friends": friends, "mutualWith": other, "mutualFriends": mutual,
            "recommendations": recommended}


async def _random_pairs(http: httpx.AsyncClient, made: Generated, count: int, rng: random.Random,
                        progress: Progress, concurrency: int = 1) -> None:
    """``count`` random addFriend attempts among the made users, self and known pairs skipped."""
    taken = {frozenset(p) for p in made.friendships}
    lock = asyncio.Semaphore(concurrency)
    done = 0

    async def attempt(a: int, b: int) -> None:
        nonlocal done
        async with lock:
            if await befriend(http, a, b):
                made.friendships.append((a, b))
            else:
                made.skipped += 1
        done += 1
        progress("random friendships", done, count)

    tasks = []
    for _ in range(count):
        a, b = rng.choice(made.users), rng.choice(made.users)
        if a == b or frozenset((a, b)) in taken:
            made.skipped += 1
            done += 1
            progress("random friendships", done, count)
            continue
        taken.add(frozenset((a, b)))
        tasks.append(attempt(a, b))
    await asyncio.gather(*tasks)


async def network(http: httpx.AsyncClient, progress: Progress = _quiet) -> Generated:
    """The six users and six friendships of generate-social-network.sh, then its three queries."""
    await wait_until_healthy(http)
    made = Generated()
    for n, (first, last) in enumerate(NETWORK, 1):
        made.users.append(await create_user(http, f"{first} {last}"))
        progress("users", n, len(NETWORK))
    for n, (a, b) in enumerate(NETWORK_FRIENDSHIPS, 1):
        pair = (made.users[a], made.users[b])
        if await befriend(http, *pair):
            made.friendships.append(pair)
        progress("friendships", n, len(NETWORK_FRIENDSHIPS))
    mh, kb = made.users[0], made.users[3]
    made.queries = await _queries(http, mh, kb)
    made.queries["recommendationsForKB"] = (
        await http.get(f"/recommendation/v1/users/{kb}/commands/recommendFriends")).json()
    return made


async def serial(http: httpx.AsyncClient, rng: random.Random, pairs: int = 300,
                 progress: Progress = _quiet) -> Generated:
    """generate-serial.sh: the 15 users one after another, then ``pairs`` random friendships."""
    await wait_until_healthy(http)
    made = Generated()
    for n, name in enumerate(NAMES_15, 1):
        made.users.append(await create_user(http, name))
        progress("users", n, len(NAMES_15))
    await _random_pairs(http, made, pairs, rng, progress)
    made.queries = await _queries(http, rng.choice(made.users), rng.choice(made.users))
    return made


async def parallel(http: httpx.AsyncClient, rng: random.Random, pairs: int = 500, concurrency: int = 16,
                   progress: Progress = _quiet) -> Generated:
    """generate-parallel.sh: 100 users made concurrently, the chain over their ids, ``pairs`` random pairs."""
    await wait_until_healthy(http)
    made = Generated()
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> int:
        async with gate:
            user_id = await create_user(http, name)
            progress("users", len(made.users) + 1, len(NAMES_100))
            made.users.append(user_id)
            return user_id

    await asyncio.gather(*(one(name) for name in NAMES_100))
    chain = sorted(made.users)
    for n, (a, b) in enumerate(itertools.pairwise(chain), 1):
        if await befriend(http, a, b):
            made.friendships.append((a, b))
        progress("chain", n, len(chain) - 1)
    await _random_pairs(http, made, pairs, rng, progress, concurrency)
    made.queries = await _queries(http, rng.choice(made.users), rng.choice(made.users))
    return made
