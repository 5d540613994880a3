"""auth: registration, login, sessions and their revocation, unique usernames, the bootstrap rule."""

from __future__ import annotations

import asyncio
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import select

from ebike.contracts.events import UserLoggedIn, UserRegistered
from ebike.services import auth
from ebike.tests.conftest import Ebike

PASSWORD = "password123"


async def register(ebike: Ebike, username: str, role: str = "CUSTOMER", expect: int | None = 200,
                   **extra: Any) -> Any:
    """POST /register and return the body."""
    return await ebike.call("auth", "POST", "/register",
                            {"username": username, "password": PASSWORD, "role": role, **extra}, expect=expect)


async def whoami(ebike: Ebike, session: str, expect: int = 200) -> Any:
    """GET /auth with a session id."""
    return await ebike.call("auth", "GET", "/auth", headers={"X-Session-ID": session}, expect=expect)


async def test_register_login_logout_revokes_the_session(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    assert alice["username"] == "alice" and alice["role"] == "CUSTOMER"
    assert alice["sessionId"] and alice["lastLogin"] == alice["createdAt"] == "2026-01-01T08:00:00Z"
    assert (await whoami(ebike, alice["sessionId"]))["id"] == alice["id"]

    await ebike.advance(60)
    again = await ebike.call("auth", "POST", "/login", {"username": "alice", "password": PASSWORD})
    assert again["id"] == alice["id"] and again["sessionId"] not in (None, alice["sessionId"])
    assert again["lastLogin"] == "2026-01-01T08:01:00Z"
    me = await whoami(ebike, again["sessionId"])
    assert me["sessionId"] == again["sessionId"] and me["lastLogin"] == "2026-01-01T08:01:00Z"

    out = await ebike.call("auth", "POST", "/logout", headers={"X-Session-ID": again["sessionId"]})
    assert out == {"status": "success"}
    assert await whoami(ebike, again["sessionId"], expect=400) == {"error": "invalid session"}
    # The other session is independent and still valid; a second logout of a revoked one is refused.
    assert (await whoami(ebike, alice["sessionId"]))["id"] == alice["id"]
    again_out = await ebike.call("auth", "POST", "/logout", headers={"X-Session-ID": again["sessionId"]},
                                 expect=400)
    assert again_out == {"error": "invalid session"}


async def test_unknown_or_missing_session(ebike: Ebike) -> None:
    assert await whoami(ebike, "no-such-session", expect=400) == {"error": "invalid session"}
    assert await ebike.call("auth", "GET", "/auth", expect=400) == {"error": "invalid session"}
    bad = await ebike.call("auth", "POST", "/logout", headers={"X-Session-ID": "nope"}, expect=400)
    assert bad == {"error": "invalid session"}


async def test_register_and_login_emit_events(ebike: Ebike) -> None:
    alice = await register(ebike, "alice")
    await ebike.call("auth", "POST", "/login", {"username": "alice", "password": PASSWORD})
    log = await ebike.runtime.service("auth").store.read_log()
    assert [e.type for e in log] == ["UserRegistered", "UserLoggedIn", "UserLoggedIn"]
    assert log[0].event == UserRegistered(id=alice["id"], username="alice", role="CUSTOMER")
    assert log[1].event == UserLoggedIn(id=alice["id"], username="alice", timestamp=alice["lastLogin"])
    assert {e.key for e in log} == {alice["id"]}


async def test_wrong_password_and_unknown_user_are_the_same_401(ebike: Ebike) -> None:
    await register(ebike, "alice")
    for username, password in (("alice", "wrongpass1"), ("nobody", PASSWORD)):
        answer = await ebike.call("auth", "POST", "/login", {"username": username, "password": password},
                                  expect=401)
        assert answer == {"error": "invalid username or password"}


async def test_validation(ebike: Ebike) -> None:
    for body in ({"username": "", "password": PASSWORD, "role": "CUSTOMER"},
                 {"username": "bob", "password": "", "role": "CUSTOMER"},
                 {"username": "   ", "password": PASSWORD, "role": "CUSTOMER"},
                 {"username": "bob", "password": PASSWORD, "role": "ROOT"},
                 {"username": "bob", "password": PASSWORD},
                 {"username": "bob", "password": PASSWORD, "role": "CUSTOMER", "bootstrap": True}):
        answer = await ebike.call("auth", "POST", "/register", body, expect=422)
        assert answer["error"] == "validation failed", body
    for body in ({"username": "al", "password": PASSWORD}, {"username": "alice", "password": "short"}):
        answer = await ebike.call("auth", "POST", "/login", body, expect=422)
        assert answer["error"] == "validation failed", body
    assert await ebike.call("auth", "GET", "/users") == []


async def test_duplicate_username(ebike: Ebike) -> None:
    await register(ebike, "alice")
    assert await register(ebike, "alice", role="ADMIN", expect=409) == {"error": "user already exists"}
    assert [u["username"] for u in await ebike.call("auth", "GET", "/users")] == ["alice"]


async def test_concurrent_registrations_of_one_name_make_one_user(ebike: Ebike) -> None:
    answers = await asyncio.gather(*(
        ebike.runtime.client("auth").post("/register", json={"username": "carol", "password": f"password{i}",
                                                             "role": "CUSTOMER"})
        for i in range(10)
    ))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 9
    assert all(a.json() == {"error": "user already exists"} for a in answers if a.status_code == 409)
    assert len(await ebike.call("auth", "GET", "/users")) == 1
    registered = [e for e in await ebike.runtime.service("auth").store.read_log() if e.type == "UserRegistered"]
    assert len(registered) == 1


async def test_bootstrap_admin_only_while_no_admin_exists(ebike: Ebike) -> None:
    assert await ebike.call("auth", "GET", "/admins/exists") == {"exists": False}
    await register(ebike, "alice")  # customers do not count
    assert await ebike.call("auth", "GET", "/admins/exists") == {"exists": False}
    first = await register(ebike, "admin1", role="ADMIN", bootstrap=True)
    assert first["role"] == "ADMIN" and first["sessionId"]
    assert await ebike.call("auth", "GET", "/admins/exists") == {"exists": True}
    assert await register(ebike, "admin2", role="ADMIN", bootstrap=True, expect=403) == {"error": "Not authorized"}
    # Not a bootstrap (the gateway checked the caller is an admin): allowed.
    await register(ebike, "admin3", role="ADMIN")
    users = await ebike.call("auth", "GET", "/users")
    assert [(u["username"], u["role"], u["sessionId"]) for u in users] == [
        ("alice", "CUSTOMER", None), ("admin1", "ADMIN", None), ("admin3", "ADMIN", None)]


async def test_concurrent_bootstraps_make_one_admin(ebike: Ebike) -> None:
    answers = await asyncio.gather(*(
        ebike.runtime.client("auth").post("/register", json={"username": f"admin{i}", "password": PASSWORD,
                                                             "role": "ADMIN", "bootstrap": True})
        for i in range(5)
    ))
    assert sorted(a.status_code for a in answers) == [200, 403, 403, 403, 403]
    assert [u["role"] for u in await ebike.call("auth", "GET", "/users")] == ["ADMIN"]


async def test_passwords_are_stored_as_argon2id_hashes(ebike: Ebike) -> None:
    await register(ebike, "alice")
    rows = await ebike.runtime.service("auth").store.fetch_all(select(auth.users.c.password_hash))
    [stored] = [r["password_hash"] for r in rows]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
