"""JWT sessions: RS256 tokens, keys generated on first start, cookie and Bearer transport, and the
server-side session store that makes logout revoke at once.

A token only says who claims to be calling; every request also asks the service that keeps the
sessions (``Sessions``) whether the session the token names is still alive. Tokens signed with
another key, with ``alg: none``, tampered with or expired verify as None: the caller is anonymous,
not an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Column, Float, ForeignKey, Select, String, Table, select
from starlette.responses import Response

from junction.errors import HttpError

if TYPE_CHECKING:
    from junction.service import Service
    from junction.store import Store
    from junction.uow import UnitOfWork

COOKIE = "jwt"
ALGORITHM = "RS256"


@dataclass(frozen=True)
class KeyPair:
    """The RSA key pair that signs and verifies session tokens."""

    private_pem: bytes
    public_pem: bytes

    @classmethod
    def load_or_create(cls, private_path: Path, public_path: Path) -> KeyPair:
        """Read the PEM files; generate and write a 2048-bit pair when they are absent."""
        if private_path.exists() and public_path.exists():
            return cls(private_path.read_bytes(), public_path.read_bytes())
        keys = cls.generate()
        private_path.parent.mkdir(parents=True, exist_ok=True)
        public_path.parent.mkdir(parents=True, exist_ok=True)
        private_path.write_bytes(keys.private_pem)
        os.chmod(private_path, 0o600)
        public_path.write_bytes(keys.public_pem)
        return keys

    @classmethod
    def generate(cls) -> KeyPair:
        """A new 2048-bit pair, kept by the caller (in files, or in a service's store to share it between
        the service's instances)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(private_pem, public_pem)


class TokenSigner:
    """Issues and verifies RS256 session tokens."""

    def __init__(self, keys: KeyPair, lifetime: timedelta = timedelta(days=7)) -> None:
        self._private = serialization.load_pem_private_key(keys.private_pem, password=None)
        self._public = serialization.load_pem_public_key(keys.public_pem)
        self.lifetime = lifetime

    def issue(self, claims: Mapping[str, Any], now: float) -> str:
        """A signed token carrying ``claims``, valid for ``lifetime`` from ``now`` (Unix seconds)."""
        payload = {**claims, "iat": int(now), "exp": int(now + self.lifetime.total_seconds())}
        return jwt.encode(payload, self._private, algorithm=ALGORITHM)  # type: ignore[arg-type]

    def verify(self, token: str, now: float) -> dict[str, Any] | None:
        """The claims of a valid token, or None (forged, tampered, wrong algorithm, expired)."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._public, algorithms=[ALGORITHM],  # type: ignore[arg-type]
                # Time claims are checked against the platform clock below, not PyJWT's wall clock: under
                # a time-scaled or virtual clock, a fresh token's iat is "in the future" of the wall.
                options={"require": ["exp"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return None
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= now:
            return None
        if isinstance(claims.get("nbf"), int | float) and claims["nbf"] > now:
            return None
        return claims


def token_from(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The caller's token: ``Authorization: Bearer`` wins over the ``jwt`` cookie."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE) or None


@dataclass(frozen=True)
class CookiePolicy:
    """How the session cookie is written: httpOnly, SameSite=Lax, ``Secure`` when configured."""

    name: str = COOKIE
    max_age: int = 7 * 24 * 3600
    secure: bool = False
    path: str = "/"

    def set(self, response: Response, token: str) -> None:
        """Give the client its session cookie."""
        response.set_cookie(self.name, token, max_age=self.max_age, path=self.path, secure=self.secure,
                            httponly=True, samesite="lax")

    def clear(self, response: Response) -> None:
        """Delete the client's session cookie."""
        response.delete_cookie(self.name, path=self.path, secure=self.secure, httponly=True, samesite="lax")


class Sessions:
    """A service's server-side sessions: hashed session ids that logout revokes, and optionally the RS256 key
    pair that signs tokens naming them, kept in the service's store and made on its first start.

    Declared once on the service (``sessions = Sessions(service)``); every operation takes the caller's unit
    of work, so a session opens or ends in the same commit as whatever else the route writes.
    """

    KEY = "jwt-rs256"  # the key pair's row in the keys table

    def __init__(self, service: Service, table: str = "sessions", *, keys: str | None = None,
                 hash_column: str = "id_hash", user_key: str | None = None,
                 lifetime: timedelta = timedelta(days=7)) -> None:
        """Declare the sessions table (and, with ``keys``, the key pair's table) on ``service``.

        ``hash_column`` names the hashed id's column and ``user_key`` is an optional foreign key for
        ``user_id`` (``"users.id"``): both exist so that tables created before this class keep working.
        """
        user_id = Column("user_id", String, *([ForeignKey(user_key)] if user_key else []), nullable=False)
        self.table = service.table(
            table,
            # SHA-256 of the session id, not the id: a leaked table does not hand out live sessions.
            Column(hash_column, String, primary_key=True),
            user_id,
            Column("created_at", Float, nullable=False),
            Column("revoked_at", Float),
        )
        self._id_hash = self.table.c[hash_column]
        self.keys: Table | None = None
        self.lifetime = lifetime
        self._signers: WeakKeyDictionary[Store, TokenSigner] = WeakKeyDictionary()  # per open store (tests run several)
        if keys is not None:
            self.keys = service.table(keys, Column("name", String, primary_key=True),
                                      Column("private_pem", String, nullable=False),
                                      Column("public_pem", String, nullable=False))
            service.started(self.make_keys)

    # -- sessions --------------------------------------------------------------------------------
    def open(self, uow: UnitOfWork, user_id: str) -> str:
        """A new session of ``user_id``, stored when ``uow`` commits; its id, a bearer secret."""
        # 256 random bits rather than a Snowflake: a Snowflake encodes a timestamp and a counter and can be
        # guessed, and the id is all that revocation and liveness look up.
        session_id = secrets.token_urlsafe(32)
        uow.execute(self.table.insert().values({self._id_hash.key: _hash(session_id), "user_id": user_id,
                                                "created_at": uow.clock.timestamp()}))
        return session_id

    def user_query(self, session_id: str) -> Select[tuple[str]]:
        """``SELECT user_id`` of the session if it is live (known, not revoked): to fetch or to nest in a query."""
        return select(self.table.c.user_id).where(self._id_hash == _hash(session_id), self.table.c.revoked_at.is_(None))

    async def user(self, uow: UnitOfWork, session_id: str) -> str | None:
        """The user of a live session; None when it is unknown or revoked."""
        row = await uow.fetch_one(self.user_query(session_id))
        return None if row is None else str(row["user_id"])

    def revoke(self, uow: UnitOfWork, session_id: str) -> None:
        """End the session when ``uow`` commits (no-op if unknown; a revoked one keeps its first revocation time)."""
        uow.execute(self.table.update().where(self._id_hash == _hash(session_id), self.table.c.revoked_at.is_(None))
                    .values(revoked_at=uow.clock.timestamp()))

    # -- tokens naming sessions (with ``keys``) --------------------------------------------------
    async def make_keys(self, service_runtime: Any) -> None:
        """Make the key pair on the service's first start (``Service.started``); a racing instance keeps the first."""
        keys = self._keys_table()
        uow: UnitOfWork = service_runtime.uow()
        if await uow.fetch_one(select(keys.c.name).where(keys.c.name == self.KEY)) is not None:
            return
        pair = await asyncio.to_thread(KeyPair.generate)  # RSA generation takes a while of CPU
        uow.upsert(keys, {"name": self.KEY, "private_pem": pair.private_pem.decode(),
                          "public_pem": pair.public_pem.decode()}, keys=["name"])
        await uow.commit()

    async def signer(self, uow: UnitOfWork) -> TokenSigner:
        """The signer with the service's key pair (503 before the first start made it)."""
        cached = self._signers.get(uow.store)
        if cached is None:
            keys = self._keys_table()
            row = await uow.fetch_one(select(keys).where(keys.c.name == self.KEY))
            if row is None:
                raise HttpError("signing key missing", status=503)
            pair = KeyPair(row["private_pem"].encode(), row["public_pem"].encode())
            cached = self._signers[uow.store] = TokenSigner(pair, self.lifetime)
        return cached

    async def issue(self, uow: UnitOfWork, user_id: str, claims: Mapping[str, Any] | None = None) -> str:
        """Open a session of ``user_id`` and answer a token naming it (``sub``, ``sid`` and ``claims``), valid for
        ``lifetime`` from now on the platform clock; the session commits with ``uow``."""
        signer = await self.signer(uow)  # first: no session is queued when there is no key to sign with
        session_id = self.open(uow, user_id)
        return signer.issue({**(claims or {}), "sub": user_id, "sid": session_id}, uow.clock.timestamp())

    async def claims(self, uow: UnitOfWork, token: str) -> dict[str, Any] | None:
        """The claims of a token these keys signed, unexpired, naming a user and a session (live or not); else None."""
        claims = (await self.signer(uow)).verify(token, uow.clock.timestamp())
        if claims is None or not isinstance(claims.get("sub"), str) or not isinstance(claims.get("sid"), str):
            return None
        return claims

    async def verify(self, uow: UnitOfWork, token: str) -> dict[str, Any] | None:
        """The claims of a valid token whose session is live and its user's; None otherwise (so logout takes
        effect at once, not at expiry)."""
        claims = await self.claims(uow, token)
        if claims is None or await self.user(uow, claims["sid"]) != claims["sub"]:
            return None
        return claims

    def _keys_table(self) -> Table:
        if self.keys is None:
            raise TypeError("these sessions sign no tokens: declare them with Sessions(service, keys=...)")
        return self.keys


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
