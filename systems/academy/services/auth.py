"""auth: logins and sessions. A login checks the password against the credentials content keeps (the
thesis's shared credentials) with argon2, opens a server-side session and answers a JWT naming it, signed
RS256 by the platform's ``Sessions`` with auth's key pair (made on the first start and kept in auth's
store, so every instance of auth signs with it). ``/verify`` tells bff, ssr and the live room who a token
belongs to, with the user's current status and role (an approval takes effect at once, without a new
login), and refuses a token whose session was revoked: logout takes effect at once, not at expiry.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from academy.contracts.api import Login, Model
from academy.passwords import matches
from junction.errors import Unauthorized
from junction.gateway.sessions import Sessions, token_from
from junction.service import Service
from junction.transport import UpstreamError
from junction.uow import UnitOfWork

service = Service("auth", worker=20)
# The key table is not "signing_keys": that one held the HS256 secret of earlier data directories, in other
# columns.
sessions = Sessions(service, keys="session_keys")

INVALID_LOGIN = "invalid email or password"


class Verify(Model):
    """``POST /verify``: a token to check."""

    token: str


async def issue(uow: UnitOfWork, user_id: str, role: str) -> str:
    """A token for ``user_id`` (``sub``) naming a new session (``sid``), valid for the signer's lifetime from now
    on the platform clock; the session commits with ``uow``."""
    return await sessions.issue(uow, user_id, {"role": role})


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
    claims = await sessions.claims(uow, token)
    if claims is None:
        raise Unauthorized("invalid token")
    sessions.revoke(uow, claims["sid"])
    return Response(status_code=204)


@service.route("POST", "/verify")
async def verify(body: Verify, uow: UnitOfWork) -> Any:
    """The user a token belongs to, as content knows them now; 401 for a forged, tampered, expired or logged-out
    one."""
    claims = await sessions.verify(uow, body.token)
    if claims is None:
        raise Unauthorized("invalid token or ended session")
    try:
        return await uow.call("content").get(f"/users/{quote(claims['sub'])}")
    except UpstreamError as error:
        if error.status == 404:
            raise Unauthorized("invalid token") from None
        raise
