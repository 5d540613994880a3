"""JWT sessions: RS256 tokens, keys generated on first start, cookie and Bearer transport.

A token only says who claims to be calling; every request also asks the auth service whether
its session is still alive (``sessionId`` claim), which is what makes logout revoke at once.
Tokens signed with another key, with ``alg: none``, tampered with or expired verify as None: the
caller is anonymous, not an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.responses import Response

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
