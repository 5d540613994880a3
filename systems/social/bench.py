"""``junction bench social``: a large graph through the event path, then the graph queries and the replay.

1. **Build**: ``users`` users and ``friendships`` distinct random friendships are written the way the user
   and friend services write them (rows and events in one unit of work, the ids from their sequences),
   in batches of ``BATCH`` per transaction; the recommendation projection consumes them meanwhile.
   Reported: the write rate, and the projection's catch-up rate in events/s.
2. **Queries**: ``recommendFriends`` and ``findMutualFriends`` (with a friend of a friend) for random users,
   each a full HTTP request to the recommendation service's app in-process; p50 and p99 in ms, next to the
   same SQL run raw on the projection's SQLite file (the baseline: what the platform adds).
3. **Replay**: ``junction replay``'s rebuild of the projection from the two logs, in events/s.

Defaults are the issue's: 100,000 users and 1,000,000 friendships (a few minutes on two cores);
``--quick`` builds 10,000 and 100,000.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from junction.bench import BenchOptions, percentile
from junction.runtime import Runtime
from junction.uow import UnitOfWork
from social.contracts.events import FriendAdded, UserCreated
from social.services import friend, user
from social.system import build

BATCH = 2_000  # users or friendships per unit of work
SAMPLES = 1_000  # queries of each kind
TARGET_P99_MS = 50.0


def _bar(console: Console, what: str) -> Progress:
    return Progress(TextColumn(f"{what:>28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def random_pairs(users: int, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """``count`` distinct undirected pairs of distinct users 1..users, as (asker, friend)."""
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int]] = []
    while len(pairs) < count:
        a, b = rng.randint(1, users), rng.randint(1, users)
        key = (min(a, b), max(a, b))
        if a != b and key not in seen:
            seen.add(key)
            pairs.append((a, b))
    return pairs


async def write_users(runtime: Runtime, count: int, tick: Callable[[int], None]) -> None:
    """``count`` users, as the user service writes them, BATCH per transaction."""
    service = runtime.service("user")
    for start in range(0, count, BATCH):
        uow: UnitOfWork = service.uow()
        now = uow.now()
        for n in range(start, min(start + BATCH, count)):
            user_id = await uow.next_value("users")
            uow.insert(user.users, {"id": user_id, "first_name": f"First{n}", "last_name": f"Last{n}",
                                    "created_at": now.timestamp(), "last_modified": now.timestamp()})
            uow.append(user.stream(user_id), UserCreated(user_id=user_id, first_name=f"First{n}",
                                                         last_name=f"Last{n}", created_at=now, last_modified=now),
                       expected_version=0)
        await uow.commit()
        tick(min(BATCH, count - start))


async def write_friendships(runtime: Runtime, pairs: list[tuple[int, int]], tick: Callable[[int], None]) -> None:
    """The friendships, as the friend service writes them, BATCH per transaction."""
    service = runtime.service("friend")
    for start in range(0, len(pairs), BATCH):
        uow: UnitOfWork = service.uow()
        now = uow.now()
        chunk = pairs[start:start + BATCH]
        for a, b in chunk:
            row_id = await uow.next_value("friends")
            uow.insert(friend.friends, {"id": row_id, "user_id": a, "friend_id": b, "low": min(a, b),
                                        "high": max(a, b), "created_at": now.timestamp(),
                                        "updated_at": now.timestamp()})
            uow.append(f"friendship-{min(a, b)}-{max(a, b)}", FriendAdded(id=row_id, user_id=a, friend_id=b,
                                                                          created_at=now))
        await uow.commit()
        tick(len(chunk))


async def caught_up(runtime: Runtime, total: int, progress: Progress, what: str) -> float:
    """Wait with a progress bar until the projection has taken ``total`` events; the seconds it took."""
    workers = [w for name, w in runtime.service("recommendation").subscriptions.items()
               if name.startswith("projection:")]
    task = progress.add_task(what, total=total)
    started = time.perf_counter()
    while (done := sum(w.position for w in workers)) < total:
        progress.update(task, completed=done)
        await asyncio.sleep(0.05)
    progress.update(task, completed=total)
    return time.perf_counter() - started


def timed_ms(samples: list[float]) -> dict[str, float]:
    """p50 and p99 of durations in seconds, in ms."""
    return {"p50_ms": round(percentile(samples, 0.50) * 1000, 2), "p99_ms": round(percentile(samples, 0.99) * 1000, 2)}


RAW_RECOMMEND = """
SELECT p.json, w.weight FROM people p JOIN (
    SELECT theirs.b AS id, count(*) AS weight FROM links mine JOIN links theirs ON theirs.a = mine.b
    WHERE mine.a = ? AND theirs.b != ? AND NOT EXISTS (SELECT 1 FROM links k WHERE k.a = ? AND k.b = theirs.b)
    GROUP BY theirs.b) w ON w.id = p.id
ORDER BY w.weight DESC, w.id"""
RAW_MUTUAL = """
SELECT p.json FROM links x JOIN links y ON y.a = x.b AND y.b = ?
JOIN people p ON p.id = x.b WHERE x.a = ? ORDER BY p.id"""


async def measure_queries(runtime: Runtime, users: int, rng: random.Random, db: Path) -> dict[str, Any]:
    """recommendFriends and findMutualFriends for random users, through HTTP in-process and raw SQL."""
    http = runtime.client("recommendation")
    recommend, mutual, raw_recommend, raw_mutual, sizes = [], [], [], [], []
    raw = sqlite3.connect(db)
    try:
        for _ in range(SAMPLES):
            me = rng.randint(1, users)
            started = time.perf_counter()
            answer = await http.get(f"/v1/users/{me}/commands/recommendFriends")
            recommend.append(time.perf_counter() - started)
            ranked = answer.json()
            sizes.append(len(ranked))
            other = ranked[0]["user"]["id"] if ranked else rng.randint(1, users)
            started = time.perf_counter()
            await http.get(f"/v1/users/{me}/commands/findMutualFriends", params={"friendId": other})
            mutual.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw.execute(RAW_RECOMMEND, (me, me, me)).fetchall()
            raw_recommend.append(time.perf_counter() - started)
            started = time.perf_counter()
            raw.execute(RAW_MUTUAL, (other, me)).fetchall()
            raw_mutual.append(time.perf_counter() - started)
    finally:
        raw.close()
    return {"recommendFriends": timed_ms(recommend), "findMutualFriends": timed_ms(mutual),
            "raw_recommend_sql": timed_ms(raw_recommend), "raw_mutual_sql": timed_ms(raw_mutual),
            "mean_recommendations": round(sum(sizes) / len(sizes), 1)}


async def run(console: Console, options: BenchOptions) -> dict[str, Any]:
    """The whole benchmark; its figures as JSON-ready data."""
    users, friendships = (10_000, 100_000) if options.quick else (100_000, 1_000_000)
    rng = random.Random(7)
    pairs = random_pairs(users, friendships, rng)
    events = users + friendships
    with tempfile.TemporaryDirectory(prefix="junction-bench-social-") as directory:
        async with Runtime(build(), Path(directory)) as runtime:
            with _bar(console, "build") as progress:
                task = progress.add_task("users and friendships written", total=events)
                started = time.perf_counter()
                await write_users(runtime, users, lambda n: progress.advance(task, n))
                await write_friendships(runtime, pairs, lambda n: progress.advance(task, n))
                written = time.perf_counter() - started
                catch_up = await caught_up(runtime, events, progress, "projection catching up")
            build_seconds = written + catch_up
            queries = await measure_queries(runtime, users, rng, Path(directory) / "recommendation.db")
            with _bar(console, "replay") as progress:
                task = progress.add_task("replaying recommendations", total=events)
                started = time.perf_counter()
                await runtime.rebuild("recommendations", lambda done, total: progress.update(
                    task, completed=done, total=total))
                replay_seconds = time.perf_counter() - started
    result = {
        "users": users, "friendships": friendships, "events": events,
        "write_events_per_s": round(events / written), "build_seconds": round(build_seconds, 1),
        "projection_behind_after_writes_s": round(catch_up, 1),
        **queries,
        "replay_seconds": round(replay_seconds, 1), "replay_events_per_s": round(events / replay_seconds),
        "target_p99_ms": TARGET_P99_MS,
    }
    table = Table(title=f"social graph: {users:,} users, {friendships:,} friendships (embedded, SQLite)")
    table.add_column("figure")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_column("raw SQL p99", justify="right")
    for name, raw_name in (("recommendFriends", "raw_recommend_sql"), ("findMutualFriends", "raw_mutual_sql")):
        figures, raw_figures = result[name], result[raw_name]
        met = "met" if figures["p99_ms"] <= TARGET_P99_MS else "MISSED"
        table.add_row(f"{name} (target p99 <= {TARGET_P99_MS:.0f} ms: {met})", f"{figures['p50_ms']} ms",
                      f"{figures['p99_ms']} ms", f"{raw_figures['p99_ms']} ms")
    console.print(table)
    console.print(f"written {result['write_events_per_s']:,} events/s; built (written and projected) in "
                  f"{result['build_seconds']} s; replay {result['replay_events_per_s']:,} events/s "
                  f"({result['replay_seconds']} s); {result['mean_recommendations']} recommendations per user")
    return result
