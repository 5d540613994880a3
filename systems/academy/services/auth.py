"""auth: logins and sessions. A login checks the password against the credentials content keeps (the
thesis's shared credentials) with argon2, opens a server-side session and answers a JWT naming it, signed
RS256 by ``junction.gateway.sessions`` with auth's key pair (made on the first start and kept in auth's
store, so every instance of auth signs with it). ``/verify`` tells bff, ssr and the live room who a token
belongs to, with the user's current status and role (an approval takes effect at once, without a new
login), and refuses a token whose session was revoked: logout takes effect at once, not at expiry.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from sqlalchemy import Column, Float, String, select
from starlette.requests import Request
from starlette.responses import Response

from academy.contracts.api import Login, Model
from academy.passwords import matches
from junction.errors import HttpError, Unauthorized
from junction.gateway.sessions import KeyPair, TokenSigner, token_from
from junction.service import Service
from junction.store import Store
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("auth", worker=20)
# Not "signing_keys": that table held the HS256 secret of earlier data directories, in other columns.
keys = service.table("session_keys", Column("name", String, primary_key=True),
                     Column("private_pem", String, nullable=False), Column("public_pem", String, nullable=False))
sessions = service.table(
    "sessions",
    # SHA-256 of the session id, not the id: a leaked table does not hand out live sessions.
    Column("id_hash", String, primary_key=True),
    Column("user_id", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

KEY = "jwt-rs256"
INVALID_LOGIN = "invalid email or password"
_signers: WeakKeyDictionary[Store, TokenSigner] = WeakKeyDictionary()  # per running store (tests run several)


class Verify(Model):
    """``POST /verify``: a token to check."""

    token: str


async def _signer(uow: UnitOfWork) -> TokenSigner:
    cached = _signers.get(uow.store)
    if cached is None:
        row = await uow.fetch_one(select(keys).where(keys.c.name == KEY))
        if row is None:
            raise HttpError("signing key missing", status=503)
        cached = _signers[uow.store] = TokenSigner(KeyPair(row["private_pem"].encode(), row["public_pem"].encode()))
    return cached


@service.started
async def make_key(service_runtime: Any) -> None:
    """Make the key pair on the first start (a second instance racing keeps the first pair)."""
    uow: UnitOfWork = service_runtime.uow()
    if await uow.fetch_one(select(keys.c.name).where(keys.c.name == KEY)) is not None:
        return
    pair = await asyncio.to_thread(KeyPair.generate)  # RSA generation takes a while of CPU
    uow.upsert(keys, {"name": KEY, "private_pem": pair.private_pem.decode(), "public_pem": pair.public_pem.decode()},
               keys=["name"])
    await uow.commit()


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def issue(uow: UnitOfWork, user_id: str, role: str) -> str:
    """A token for ``user_id`` (``sub``) naming a new session (``sid``), valid for the signer's lifetime from now
    on the platform clock; the session commits with ``uow``."""
    now = uow.clock.timestamp()
    # The session id is a bearer secret (it is what revocation looks up), so 256 random bits, not a Snowflake.
    session_id = secrets.token_urlsafe(32)
    uow.execute(sessions.insert().values(id_hash=_hash(session_id), user_id=user_id, created_at=now))
    return (await _signer(uow)).issue({"sub": user_id, "role": role, "sid": session_id}, now)


async def _claims(uow: UnitOfWork, token: str) -> dict[str, Any]:
    """The claims of a token signed by auth and not expired (401 otherwise)."""
    claims = (await _signer(uow)).verify(token, uow.clock.timestamp())
    if claims is None or not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
        raise Unauthorized("invalid token")
    return claims


@service.route("POST", "/api/auth/login", invalid=Unauthorized(INVALID_LOGIN))
async def login(body: Login, uow: UnitOfWork) -> Any:
    """``{token}`` for a known e-mail and its password; 401 otherwise (the same answer for both)."""
    try:
        user = await uow.call("content").get(f"/credentials?email={quote(body.email.strip().lower())}")
    except UpstreamError as error:
        if error.status == 404:
            raise Unauthorized(INVALID_LOGIN) from None
        raise
    if not await asyncio.to_thread(matches, user["passwordHash"], body.password):  # argon2 takes ~50 ms of CPU
        raise Unauthorized(INVALID_LOGIN)
    return {"token": await issue(uow, user["id"], user["role"])}


@service.route("POST", "/api/auth/logout")
async def logout(request: Request, uow: UnitOfWork) -> Response:
    """Revoke the caller's session (``Authorization: Bearer`` or the session cookie): 204, also when it was
    revoked already; 401 without a token auth signed."""
    token = token_from(request.headers, request.cookies)
    if token is None:
        raise Unauthorized("not authenticated")
    claims = await _claims(uow, token)
    uow.execute(sessions.update().where(sessions.c.id_hash == _hash(claims["sid"]), sessions.c.revoked_at.is_(None))
                .values(revoked_at=uow.clock.timestamp()))
    return Response(status_code=204)


@service.route("POST", "/verify")
async def verify(body: Verify, uow: UnitOfWork) -> Any:
    """The user a token belongs to, as content knows them now; 401 for a forged, tampered, expired or logged-out
    one."""
    claims = await _claims(uow, body.token)
    live = await uow.fetch_one(select(sessions.c.user_id).where(
        sessions.c.id_hash == _hash(claims["sid"]), sessions.c.revoked_at.is_(None)))
    if live is None or live["user_id"] != claims["sub"]:
        raise Unauthorized("session ended")
    try:
        return await uow.call("content").get(f"/users/{quote(claims['sub'])}")
    except UpstreamError as error:
        if error.status == 404:
            raise Unauthorized("invalid token") from None
        raise
