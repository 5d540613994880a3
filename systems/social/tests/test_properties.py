"""Property: for random graphs built through the API, every recommendation is neither the user nor a friend,
its weight is the size of the mutual-friends answer, and the list is heaviest first with ties by id.

Each example builds its graph among fresh users of one running system (ids never repeat), so examples
do not see each other's friendships.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from social.tests.conftest import Social, open_social

SIZE = 7
PAIRS = st.lists(st.tuples(st.integers(0, SIZE - 1), st.integers(0, SIZE - 1)), max_size=18)
# removals after the additions: the graph must forget what was removed
REMOVALS = st.lists(st.integers(0, 17), max_size=4)


async def check(social: Social, pairs: list[tuple[int, int]], removals: list[int]) -> None:
    users = [await social.create(f"P{n}", "Q") for n in range(SIZE)]
    edges: set[frozenset[int]] = set()
    made: list[tuple[int, int]] = []
    for i, j in pairs:
        a, b = users[i], users[j]
        answer = await social.add(a, b)
        expected = 400 if a == b else 409 if frozenset((a, b)) in edges else 201
        assert answer.status_code == expected, answer.text
        if expected == 201:
            edges.add(frozenset((a, b)))
            made.append((a, b))
    for n in removals:
        if n < len(made):
            a, b = made[n]
            answer = await social.remove(a, b)
            assert answer.status_code == (204 if frozenset((a, b)) in edges else 404)
            edges.discard(frozenset((a, b)))
    await social.settle()
    for me in users:
        friends = {next(iter(e - {me})) for e in edges if me in e}
        ranked = await social.rec(me)
        for candidate, weight in ranked:
            assert candidate != me and candidate not in friends
            mutual = await social.mutual(me, candidate)
            assert weight == len(mutual) > 0
            assert set(mutual) == friends & {next(iter(e - {candidate})) for e in edges if candidate in e}
        assert ranked == sorted(ranked, key=lambda r: (-r[1], r[0]))
        two_steps = {f2 for f in friends for e in edges if f in e for f2 in e - {f}} - friends - {me}
        assert {c for c, _ in ranked} == two_steps  # nobody left out either


def test_recommendations_hold_their_invariants_on_random_graphs() -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as directory:
            async with open_social(Path(directory)) as social:
                @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
                @given(pairs=PAIRS, removals=REMOVALS)
                def example(pairs: list[tuple[int, int]], removals: list[int]) -> None:
                    future = asyncio.run_coroutine_threadsafe(check(social, pairs, removals), loop)
                    future.result()

                loop = asyncio.get_running_loop()
                await asyncio.to_thread(example)

    asyncio.run(run())
