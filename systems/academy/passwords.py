"""Password hashing (argon2id), shared by bff (registration), auth (login) and the admin command."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash content stores."""
    return hasher.hash(password)


def matches(stored_hash: str, password: str) -> bool:
    """True when ``password`` is the one ``stored_hash`` was made from."""
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
