"""JWT sessions: key files, RS256 tokens checked against the platform clock, cookie and Bearer, and the
server-side session store (``Sessions``) that logout revokes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import Column, String, select
from starlette.responses import Response

from junction.clock import ScaledClock, VirtualClock
from junction.errors import ConcurrencyError, HttpError
from junction.gateway.sessions import CookiePolicy, KeyPair, Sessions, TokenSigner, token_from
from junction.ids import Snowflake
from junction.service import Service
from junction.sqlite import SqliteStore
from junction.uow import UnitOfWork


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    directory = tmp_path_factory.mktemp("keys")
    return KeyPair.load_or_create(directory / "k.pem", directory / "k.pub")


def test_keys_are_generated_once_then_read(tmp_path: Path) -> None:
    private, public = tmp_path / "secrets" / "jwt-key.pem", tmp_path / "secrets" / "jwt-key.pub"
    made = KeyPair.load_or_create(private, public)
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert private.stat().st_mode & 0o777 == 0o600
    assert KeyPair.load_or_create(private, public) == made


def test_generated_keys_are_fresh_pairs_that_sign_and_verify() -> None:
    made = KeyPair.generate()
    assert made != KeyPair.generate()
    assert made.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    signer = TokenSigner(KeyPair(made.private_pem, made.public_pem))  # as read back from where it was kept
    assert (signer.verify(signer.issue({"sub": "u1"}, now=100), now=101) or {}).get("sub") == "u1"


def test_a_token_carries_its_claims_until_it_expires(keys: KeyPair) -> None:
    clock = VirtualClock()
    signer = TokenSigner(keys, lifetime=timedelta(hours=1))
    token = signer.issue({"id": "u1", "role": "ADMIN"}, clock.timestamp())
    claims = signer.verify(token, clock.timestamp())
    assert claims is not None and claims["id"] == "u1" and claims["exp"] == int(clock.timestamp()) + 3600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert signer.verify(token, clock.timestamp() + 3599) is not None
    assert signer.verify(token, clock.timestamp() + 3600) is None


def test_time_is_the_platform_clock_not_the_wall(keys: KeyPair) -> None:
    """A time-scaled run issues tokens whose iat is in the wall clock's future; they are valid."""
    clock = ScaledClock(1000.0)
    signer = TokenSigner(keys)
    later = clock.timestamp() + 86_400  # a day ahead of the wall
    assert signer.verify(signer.issue({"id": "u1"}, later), later) is not None
    future = signer.issue({"id": "u1", "nbf": int(later + 60)}, later)
    assert signer.verify(future, later) is None  # not before: also the platform clock


def test_forged_tokens_do_not_verify(keys: KeyPair, tmp_path: Path) -> None:
    now = VirtualClock().timestamp()
    signer = TokenSigner(keys)
    token = signer.issue({"id": "u1", "role": "CUSTOMER"}, now)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    other = TokenSigner(KeyPair.load_or_create(tmp_path / "o.pem", tmp_path / "o.pub"))
    for forged in (
        f"{part({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        f"{header}.{part({**claims, 'role': 'ADMIN'})}.{signature}",
        other.issue({"id": "u1", "role": "CUSTOMER"}, now),
        jwt.encode({"id": "u1", "exp": now + 60}, "s" * 32, algorithm="HS256"),
        "garbage",
        "",
    ):
        assert signer.verify(forged, now) is None, forged
    without_exp = jwt.encode({"id": "u1"}, keys.private_pem, algorithm="RS256")  # rightly signed, never expiring
    assert signer.verify(without_exp, now) is None


@pytest.mark.parametrize(("headers", "cookies", "expected"), [
    ({"authorization": "Bearer abc"}, {"jwt": "cookie"}, "abc"),  # the header wins
    ({"authorization": "bearer  abc "}, {}, "abc"),
    ({"authorization": "Basic abc"}, {"jwt": "cookie"}, "cookie"),
    ({"authorization": "Bearer "}, {"jwt": "cookie"}, "cookie"),
    ({}, {"jwt": ""}, None),
    ({}, {}, None),
])
def test_token_from_prefers_bearer(headers: dict[str, str], cookies: dict[str, str], expected: str | None) -> None:
    assert token_from(headers, cookies) == expected


def test_cookie_policy_writes_and_deletes_the_session_cookie() -> None:
    response = Response()
    CookiePolicy().set(response, "tok")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("jwt=tok;")
    for attribute in ("HttpOnly", "Max-Age=604800", "Path=/", "SameSite=lax"):
        assert attribute in cookie
    assert "Secure" not in cookie
    secure = Response()
    CookiePolicy(secure=True).clear(secure)
    assert "Max-Age=0" in secure.headers["set-cookie"] and "Secure" in secure.headers["set-cookie"]


# -- the server-side session store ----------------------------------------------------------------
@dataclass
class Auth:
    """A service declaring sessions, on an open SQLite store, with a virtual clock."""

    service: Service
    sessions: Sessions
    store: SqliteStore
    clock: VirtualClock

    def uow(self) -> UnitOfWork:
        """A fresh unit of work (also what ``Service.started`` hooks get from their runtime)."""
        return UnitOfWork(self.store, self.clock, Snowflake(1))

    async def start(self) -> None:
        """Run the service's start hooks, as the runtime does."""
        for hook in self.service.on_start:
            await hook(self)


async def auth_service(path: Path, **options: object) -> Auth:
    service = Service("auth", worker=1)
    sessions = Sessions(service, **options)  # type: ignore[arg-type]
    store = SqliteStore(service.name, path, service.metadata)
    await store.open()
    return Auth(service, sessions, store, VirtualClock())


@pytest.fixture
async def plain(tmp_path: Path) -> AsyncIterator[Auth]:
    auth = await auth_service(tmp_path / "plain.db")
    yield auth
    await auth.store.close()


@pytest.fixture
async def signing(tmp_path: Path) -> AsyncIterator[Auth]:
    auth = await auth_service(tmp_path / "signing.db", keys="session_keys", lifetime=timedelta(hours=1))
    await auth.start()
    yield auth
    await auth.store.close()


async def test_a_session_is_live_until_revoked(plain: Auth) -> None:
    uow = plain.uow()
    first, second = plain.sessions.open(uow, "u1"), plain.sessions.open(uow, "u1")
    assert await plain.sessions.user(plain.uow(), first) is None  # nothing before the commit
    await uow.commit()
    assert first != second and len(first) >= 43  # 256 random bits, not a guessable Snowflake
    assert await plain.sessions.user(plain.uow(), first) == "u1"

    await plain.clock.advance(60)
    out = plain.uow()
    plain.sessions.revoke(out, first)
    await out.commit()
    assert await plain.sessions.user(plain.uow(), first) is None
    assert await plain.sessions.user(plain.uow(), second) == "u1"  # sessions end one by one
    assert await plain.sessions.user(plain.uow(), "no-such-session") is None

    await plain.clock.advance(60)
    again = plain.uow()
    plain.sessions.revoke(again, first)  # a second logout keeps the first revocation time
    plain.sessions.revoke(again, "no-such-session")
    await again.commit()
    table = plain.sessions.table
    [row] = await plain.store.fetch_all(select(table).where(table.c.revoked_at.isnot(None)))
    assert row["revoked_at"] == row["created_at"] + 60


async def test_only_hashes_of_session_ids_are_stored(plain: Auth) -> None:
    uow = plain.uow()
    session_id = plain.sessions.open(uow, "u1")
    await uow.commit()
    rows = [dict(r) for r in await plain.store.fetch_all(select(plain.sessions.table))]
    assert rows == [{"id_hash": rows[0]["id_hash"], "user_id": "u1", "created_at": plain.clock.timestamp(),
                     "revoked_at": None}]
    assert session_id not in rows[0]["id_hash"] and len(rows[0]["id_hash"]) == 64


async def test_tables_made_before_the_platform_kept_sessions_still_fit(tmp_path: Path) -> None:
    """A service keeps its own table and column names, and the foreign key to its users."""
    service = Service("auth", worker=1)
    users = service.table("users", Column("id", String, primary_key=True))
    sessions = Sessions(service, "sessions", hash_column="token_hash", user_key="users.id")
    assert [c.name for c in sessions.table.columns] == ["token_hash", "user_id", "created_at", "revoked_at"]
    store = SqliteStore(service.name, tmp_path / "legacy.db", service.metadata)
    await store.open()
    try:
        clock = VirtualClock()
        uow = UnitOfWork(store, clock, Snowflake(1))
        uow.execute(users.insert().values(id="u1"))
        session_id = sessions.open(uow, "u1")
        await uow.commit()
        assert await sessions.user(UnitOfWork(store, clock, Snowflake(1)), session_id) == "u1"
        orphan = UnitOfWork(store, clock, Snowflake(1))
        sessions.open(orphan, "nobody")
        with pytest.raises(ConcurrencyError, match="FOREIGN KEY"):  # how the store reports integrity errors
            await orphan.commit()
    finally:
        await store.close()


async def test_tokens_name_sessions_and_die_with_them(signing: Auth) -> None:
    uow = signing.uow()
    token = await signing.sessions.issue(uow, "u1", {"role": "ADMIN"})
    assert await signing.sessions.verify(signing.uow(), token) is None  # its session is not committed yet
    await uow.commit()
    claims = await signing.sessions.verify(signing.uow(), token)
    assert claims is not None and claims["sub"] == "u1" and claims["role"] == "ADMIN"
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert claims["exp"] == int(signing.clock.timestamp()) + 3600

    out = signing.uow()
    signing.sessions.revoke(out, claims["sid"])
    await out.commit()
    assert await signing.sessions.verify(signing.uow(), token) is None  # logout takes effect at once
    assert await signing.sessions.claims(signing.uow(), token) == claims  # still signed: logout may run twice


async def test_tokens_expire_on_the_platform_clock(signing: Auth) -> None:
    uow = signing.uow()
    token = await signing.sessions.issue(uow, "u1")
    await uow.commit()
    await signing.clock.advance(3599)
    assert await signing.sessions.verify(signing.uow(), token) is not None
    await signing.clock.advance(1)
    assert await signing.sessions.verify(signing.uow(), token) is None


async def test_forged_tokens_and_borrowed_sessions_do_not_verify(signing: Auth, tmp_path: Path) -> None:
    uow = signing.uow()
    token = await signing.sessions.issue(uow, "alice")
    await uow.commit()
    claims = await signing.sessions.verify(signing.uow(), token)
    assert claims is not None
    now = signing.clock.timestamp()
    signer = await signing.sessions.signer(signing.uow())
    other = await auth_service(tmp_path / "other.db", keys="session_keys")
    await other.start()
    try:
        foreign = TokenSigner(KeyPair.generate()).issue({"sub": "alice", "sid": claims["sid"]}, now)
        for forged in (
            signer.issue({"sub": "bob", "sid": claims["sid"]}, now),  # rightly signed, someone else's session
            signer.issue({"sub": "alice"}, now),  # no session named
            signer.issue({"sub": 7, "sid": claims["sid"]}, now),
            foreign,  # another service's keys
            "garbage",
        ):
            assert await signing.sessions.verify(signing.uow(), forged) is None, forged
        assert await signing.sessions.claims(signing.uow(), foreign) is None
        assert await other.sessions.verify(other.uow(), token) is None  # each store made its own pair
    finally:
        await other.store.close()


async def test_the_key_pair_is_made_on_the_first_start_and_kept(tmp_path: Path) -> None:
    auth = await auth_service(tmp_path / "keys.db", keys="session_keys")
    try:
        assert auth.service.on_start == [auth.sessions.make_keys]
        with pytest.raises(HttpError) as refused:  # a login before the first start finished
            await auth.sessions.issue(auth.uow(), "u1")
        assert refused.value.status == 503
        await auth.start()
        uow = auth.uow()
        token = await auth.sessions.issue(uow, "u1")
        await uow.commit()
        keys = auth.sessions.keys
        assert keys is not None
        [made] = await auth.store.fetch_all(select(keys))
        assert made["private_pem"].startswith("-----BEGIN PRIVATE KEY-----")
        await auth.start()  # a restart (or a second instance) keeps the pair
        assert [dict(r) for r in await auth.store.fetch_all(select(keys))] == [dict(made)]
    finally:
        await auth.store.close()

    # A new process (a new Sessions, nothing cached) on the same store reads the same pair back.
    again = await auth_service(tmp_path / "keys.db", keys="session_keys")
    try:
        assert (await again.sessions.verify(again.uow(), token) or {}).get("sub") == "u1"
    finally:
        await again.store.close()


async def test_sessions_without_keys_sign_nothing(plain: Auth) -> None:
    assert plain.sessions.keys is None and plain.service.on_start == []
    with pytest.raises(TypeError, match="keys="):
        await plain.sessions.issue(plain.uow(), "u1")
