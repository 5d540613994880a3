"""auth: logins and tokens. A login checks the password against the credentials content keeps (the
thesis's shared credentials) with argon2 and answers a JWT signed with auth's own key (HS256, made on the
first start and kept in auth's store). ``/verify`` tells bff, ssr and the live room who a token belongs to,
with the user's current status and role (an approval takes effect at once, without a new login).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

import jwt
from sqlalchemy import Column, String, select

from academy.contracts.api import Login, Model
from academy.passwords import matches
from junction.errors import HttpError, Unauthorized
from junction.service import Service
from junction.store import Store
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("auth", worker=20)
keys = service.table("signing_keys", Column("name", String, primary_key=True), Column("secret", String, nullable=False))

ALGORITHM = "HS256"
LIFETIME = 7 * 24 * 3600  # seconds of platform time a token stays valid
INVALID_LOGIN = "invalid email or password"
_secrets: WeakKeyDictionary[Store, str] = WeakKeyDictionary()  # per running store (tests run several)


class Verify(Model):
    """``POST /verify``: a token to check."""

    token: str


async def _secret(uow: UnitOfWork) -> str:
    cached = _secrets.get(uow.store)
    if cached is None:
        row = await uow.fetch_one(select(keys.c.secret).where(keys.c.name == "jwt"))
        if row is None:
            raise HttpError("signing key missing", status=503)
        cached = _secrets[uow.store] = row["secret"]
    return cached


@service.started
async def make_key(service_runtime: Any) -> None:
    """Make the signing key on the first start (a second instance racing keeps the first key)."""
    uow: UnitOfWork = service_runtime.uow()
    uow.upsert(keys, {"name": "jwt", "secret": secrets.token_urlsafe(48)}, keys=["name"])
    await uow.commit()


async def issue(uow: UnitOfWork, user_id: str, role: str) -> str:
    """A token for ``user_id`` (``sub``) valid for LIFETIME from now on the platform clock."""
    now = int(uow.now().timestamp())
    return jwt.encode({"sub": user_id, "role": role, "iat": now, "exp": now + LIFETIME}, await _secret(uow),
                      algorithm=ALGORITHM)


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


@service.route("POST", "/verify")
async def verify(body: Verify, uow: UnitOfWork) -> Any:
    """The user a token belongs to, as content knows them now; 401 for a forged, tampered or expired one."""
    try:
        claims = jwt.decode(body.token, await _secret(uow), algorithms=[ALGORITHM],
                            options={"require": ["exp", "sub"], "verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if not isinstance(claims["exp"], int | float) or claims["exp"] <= uow.now().timestamp():
        raise Unauthorized("token expired")
    try:
        return await uow.call("content").get(f"/users/{claims['sub']}")
    except UpstreamError as error:
        if error.status == 404:
            raise Unauthorized("invalid token") from None
        raise
