"""The spec's acceptance scenarios S1-S5, S7, S9 and S10, black box through the edge, on both topologies.

"Eventually" is ``settle()``: the runtime waits until the recommendation graph has taken every event
(distributed, until its Kafka consumers have caught up), instead of polling for ten seconds.
"""

from __future__ import annotations

import random

from social import generate
from social.tests.conftest import Social


async def test_s1_create_and_read_users(social: Social) -> None:
    ids = [await social.create(first, last) for first, last in generate.NETWORK]
    assert ids == [1, 2, 3, 4, 5, 6]  # serial from 1 on a fresh system
    answer = await social.request("GET", "/user/v1/users/1")
    assert answer.status_code == 200
    user = answer.json()
    assert (user["id"], user["firstName"], user["lastName"]) == (1, "Michael", "H.")
    assert set(user) == {"id", "firstName", "lastName", "createdAt", "lastModified"}
    missing = await social.request("GET", "/user/v1/users/999999")
    assert missing.status_code == 404
    assert missing.json()["message"] == "The user does not exist"


async def test_s2_friendships_are_listed_outgoing_and_all_of_them(social: Social) -> None:
    mh, ms, mj, kb, sh, ee = [await social.create(first, last) for first, last in generate.NETWORK]
    for a, b in [(mh, ms), (ms, kb), (kb, sh), (kb, ee), (mh, ee), (kb, mj)]:
        answer = await social.add(a, b)
        assert answer.status_code == 201, answer.text
        row = answer.json()
        assert (row["userId"], row["friendId"]) == (a, b)
        assert set(row) == {"id", "userId", "friendId", "createdAt", "updatedAt"}
        again = await social.request("GET", f"/friend/v1/friends/{row['id']}")
        assert again.json() == row
    assert sorted(f["friendId"] for f in await social.friends(mh)) == sorted([ms, ee])
    assert sorted(f["friendId"] for f in await social.friends(kb)) == sorted([sh, ee, mj])  # not MS→KB


async def test_s3_mutual_friends_and_recommendations(social: Social) -> None:
    mh, ms, mj, kb, sh, ee = await social.network()
    await social.settle()
    assert await social.mutual(mh, kb) == sorted([ms, ee])
    assert await social.mutual(kb, mh) == sorted([ms, ee])
    assert await social.rec(kb) == [(mh, 2)]
    assert await social.rec(mh) == [(kb, 2)]
    assert await social.rec(ms) == [(ee, 2), (mj, 1), (sh, 1)]  # ties by id
    assert await social.rec(ee) == [(ms, 2), (mj, 1), (sh, 1)]
    assert await social.rec(mj) == [(ms, 1), (sh, 1), (ee, 1)]
    assert await social.rec(sh) == [(ms, 1), (mj, 1), (ee, 1)]
    (top,) = await social.recommended(kb)
    assert {k: top["user"][k] for k in ("id", "firstName", "lastName")} == {
        "id": mh, "firstName": "Michael", "lastName": "H."}


async def test_s4_a_duplicate_either_way_is_409_and_changes_nothing(social: Social) -> None:
    mh, ms, _, kb, _, _ = await social.network()
    await social.settle()
    before, heads = await social.rec(kb), await social.heads()
    for a, b in [(mh, ms), (ms, mh)]:
        answer = await social.add(a, b)
        assert answer.status_code == 409
        assert answer.json()["message"] == "The friendship already exists"
    await social.settle()
    assert len(await social.friends(mh)) == 2
    assert await social.rec(kb) == before
    assert await social.heads() == heads  # no event recorded


async def test_s5_self_friendship_and_unknown_users_change_nothing(social: Social) -> None:
    mh, *_ = await social.network()
    await social.settle()
    heads, graph = await social.heads(), (await social.request("GET", "/recommendation/v1/graph")).json()
    answer = await social.add(mh, mh)
    assert (answer.status_code, answer.json()["message"]) == (400, "A user cannot befriend oneself")
    for a, b in [(mh, 999999), (999999, mh)]:
        answer = await social.add(a, b)
        assert answer.status_code == 404
        assert answer.json()["message"] == "The supplied friends do not exist by the friendId or userId"
    await social.settle()
    assert await social.heads() == heads
    assert (await social.request("GET", "/recommendation/v1/graph")).json() == graph


async def test_s7_an_update_reaches_the_graph_and_a_mismatched_id_changes_nothing(social: Social) -> None:
    mh, _, _, kb, _, _ = await social.network()
    hunger = {"id": mh, "firstName": "Michael", "lastName": "Hunger"}
    answer = await social.request("PUT", f"/user/v1/users/{mh}", hunger)
    assert answer.status_code == 200
    assert answer.json()["lastName"] == "Hunger"
    await social.settle()
    assert (await social.recommended(kb))[0]["user"]["lastName"] == "Hunger"
    heads = await social.heads()
    wrong = await social.request("PUT", f"/user/v1/users/{mh}", {"id": kb, "firstName": "X", "lastName": "Y"})
    assert wrong.status_code == 400
    await social.settle()
    assert (await social.request("GET", f"/user/v1/users/{mh}")).json()["lastName"] == "Hunger"
    assert (await social.recommended(kb))[0]["user"]["lastName"] == "Hunger"
    assert await social.heads() == heads


async def test_s9_the_serial_generator_gives_a_graph_whose_recommendations_hold_the_invariants(social: Social) -> None:
    made = await generate.serial(social.http, random.Random(9), pairs=300)
    assert len(made.users) == 15  # the last name of names-15.txt is not lost
    assert made.friendships  # the reference's script made none
    undirected = {frozenset(p) for p in made.friendships}
    assert len(undirected) == len(made.friendships)  # no duplicate either way, no self pair
    await social.settle()
    for user in made.users:
        friends = {b if a == user else a for a, b in made.friendships if user in (a, b)}
        answer = await social.rec(user)
        for candidate, weight in answer:
            assert candidate != user and candidate not in friends
            assert weight == len(await social.mutual(user, candidate))
        assert answer == sorted(answer, key=lambda r: (-r[1], r[0]))  # heaviest first, ties by id


async def test_s10_replaying_the_logs_reproduces_the_answers_exactly(social: Social) -> None:
    ids = await social.network()
    await social.remove(ids[0], ids[5])  # a removal too: replay must undo what it undid
    await social.add(ids[5], ids[0])
    await social.settle()
    before = {u: (await social.recommended(u), [await social.mutual(u, v) for v in ids]) for u in ids}
    progress: list[tuple[int, int]] = []
    total = await social.runtime.rebuild("recommendations", lambda done, of: progress.append((done, of)))
    assert total > 0 and progress[-1] == (total, total)
    await social.settle()
    after = {u: (await social.recommended(u), [await social.mutual(u, v) for v in ids]) for u in ids}
    assert after == before
