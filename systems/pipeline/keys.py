"""Who may call the pipeline: API keys (``junction pipeline create-key``) and JWTs (``create-token``).

A key is shown once, when made; the gateway keeps only its SHA-256, one per line of ``<data dir>/api-keys``,
and reads the file again when it changes, so a key made while the system runs works at once. JWTs are
RS256, signed with the data directory's key pair (``junction.gateway.sessions``), checked on the
platform clock.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from junction.gateway.sessions import KeyPair, TokenSigner

KEYS_FILE = "api-keys"
PREFIX = "pk_"


def digest(key: str) -> str:
    """What the keys file holds of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(data_dir: Path) -> str:
    """A new API key, recorded (by its digest) in the data directory."""
    key = PREFIX + secrets.token_urlsafe(24)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / KEYS_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as keys:
        keys.write(digest(key) + "\n")
    return key


def signer(data_dir: Path, days: float = 30) -> TokenSigner:
    """The JWT signer of a data directory (its key pair made on first use)."""
    keys = KeyPair.load_or_create(data_dir / "jwt" / "private.pem", data_dir / "jwt" / "public.pem")
    return TokenSigner(keys, lifetime=timedelta(days=days))


class KeyRing:
    """Checks API keys and bearer tokens against a data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / KEYS_FILE
        self.data_dir = data_dir
        self._digests: frozenset[str] = frozenset()
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        self._signer: TokenSigner | None = None

    def _reload(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._digests, self._seen = frozenset(), None
            return
        if (stat.st_mtime_ns, stat.st_size) != self._seen:
            lines = self.path.read_text().split()
            self._digests = frozenset(line.strip() for line in lines if line.strip())
            self._seen = (stat.st_mtime_ns, stat.st_size)

    def valid_key(self, key: str) -> bool:
        """True for a key made by ``create_key`` on this data directory."""
        if not key.startswith(PREFIX):
            return False
        hashed = digest(key)
        if hashed not in self._digests:
            self._reload()  # made since the last read?
        return hashed in self._digests

    def valid_token(self, token: str, now: float) -> bool:
        """True for a JWT signed with this data directory's key, not expired at ``now``."""
        if not (self.data_dir / "jwt" / "public.pem").exists():
            return False
        if self._signer is None:
            self._signer = signer(self.data_dir)
        return self._signer.verify(token, now) is not None

    def allows(self, headers: Mapping[str, str], now: float, query_key: str | None = None) -> bool:
        """True when the request carries a valid ``X-API-Key``, bearer JWT or (pages only) ``?key=``."""
        key = headers.get("x-api-key") or query_key
        if key and self.valid_key(key):
            return True
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and bool(token.strip()) and self.valid_token(token.strip(), now)
