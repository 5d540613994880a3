"""auth: users, passwords (argon2id) and server-side sessions that logout revokes (spec §5, §0.8, §0.11)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field, field_validator, model_validator
from sqlalchemy import Column, Float, ForeignKey, String, select
from starlette.requests import Request

from ebike.contracts.api import Dto, rfc3339
from ebike.contracts.events import Role, UserLoggedIn, UserRegistered
from junction.errors import BadRequest, Conflict, HttpError
from junction.events import Event
from junction.gateway.sessions import Sessions
from junction.service import Service
from junction.uow import UnitOfWork

service = Service("auth", worker=1)

# Timestamps are stored as epoch seconds (platform clock) so they sort correctly; RFC 3339 text
# is only produced at the edge, where isoformat's optional fraction would break string ordering.
users = service.table(
    "users",
    Column("id", String, primary_key=True),
    # The unique index is what makes usernames unique under concurrency: the losing unit of work
    # fails with ConcurrencyError, the platform re-runs the route, and the re-check answers 409.
    Column("username", String, nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("role", String, nullable=False),
    Column("last_login", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
# Opaque session ids that logout revokes; the gateway signs the JWT that carries one (its keys are files,
# spec section 9). The column names are those of data directories made before the platform kept sessions.
sessions = Sessions(service, hash_column="token_hash", user_key="users.id")
bootstrap_claim = service.table(
    "bootstrap_claim",
    # At most one row, ever: the first bootstrap admin claims the slot, so two concurrent
    # bootstraps cannot both pass the "no admin yet" check (the second hits the primary key).
    Column("slot", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
)
BOOTSTRAP_SLOT = "first-admin"

# argon2-cffi's defaults are RFC 9106's low-memory profile (argon2id, t=3, m=64 MiB, p=4).
hasher = PasswordHasher()

INVALID_CREDENTIALS = "invalid username or password"
INVALID_SESSION = "invalid session"


# -- contract ------------------------------------------------------------------------------------
class RegisterIn(Dto):
    username: str = Field(min_length=1)
    password: str = Field(min_length=1)
    role: Role
    bootstrap: bool = False  # "only while no admin exists": the gateway's anonymous registerAdmin

    @field_validator("username", "password")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def bootstrap_is_for_admins(self) -> RegisterIn:
        if self.bootstrap and self.role != "ADMIN":
            raise ValueError("bootstrap registers the first ADMIN only")
        return self


class LoginIn(Dto):
    username: str = Field(min_length=3)
    password: str = Field(min_length=8)


class UserOut(Dto):
    id: str
    username: str
    role: Role
    session_id: str | None = None
    last_login: str | None
    created_at: str
    updated_at: str


def _at(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def _out(row: Any, session_id: str | None = None) -> UserOut:
    last_login = row["last_login"]
    return UserOut(id=row["id"], username=row["username"], role=row["role"], session_id=session_id,
                   last_login=None if last_login is None else _at(last_login),
                   created_at=_at(row["created_at"]), updated_at=_at(row["updated_at"]))


# -- passwords and sessions ----------------------------------------------------------------------
async def hash_password(password: str) -> str:
    """argon2id hash, computed off the event loop (it is deliberately CPU- and memory-heavy)."""
    return await asyncio.to_thread(hasher.hash, password)


@cache
def _decoy_hash() -> str:
    return hasher.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    # An unknown user is verified against a decoy hash so that the answer takes as long as for a
    # known one: response time must not reveal which usernames exist.
    try:
        hasher.verify(stored or _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


async def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the stored hash (always False, in the same time, without one)."""
    return await asyncio.to_thread(_verify, stored, password)


def _announce(uow: UnitOfWork, user_id: str, *events: Event) -> None:
    # One stream per user, keyed by the user id as the reference keys its Kafka messages. A unit of
    # work appends to it once: the SQLite store resolves ANY_VERSION for every append of a batch
    # before inserting, so two appends to one stream in one batch collide (ConcurrencyError).
    uow.append(f"user-{user_id}", *events, key=user_id)


def open_session(uow: UnitOfWork, user: dict[str, Any], now: float) -> tuple[str, UserLoggedIn]:
    """Start a session for ``user`` (a users row as a dict, updated in place); its id and the login event."""
    # The session id is a bearer secret: X-Session-ID is all GET /auth needs.
    session_id = sessions.open(uow, user["id"])
    uow.execute(users.update().where(users.c.id == user["id"]).values(last_login=now, updated_at=now))
    user.update(last_login=now, updated_at=now)
    return session_id, UserLoggedIn(id=user["id"], username=user["username"], timestamp=_at(now))


async def _active_session(uow: UnitOfWork, request: Request) -> tuple[str, Any]:
    session_id = request.headers.get("X-Session-ID", "")
    if not session_id:
        raise BadRequest(INVALID_SESSION)
    # One query: the gateway asks this on every request.
    row = await uow.fetch_one(select(users).where(users.c.id == sessions.user_query(session_id).scalar_subquery()))
    if row is None:
        raise BadRequest(INVALID_SESSION)
    return session_id, row


async def _find_user(uow: UnitOfWork, username: str) -> Any | None:
    return await uow.fetch_one(select(users).where(users.c.username == username))


async def _admin_exists(uow: UnitOfWork) -> bool:
    return await uow.fetch_one(select(users.c.id).where(users.c.role == "ADMIN").limit(1)) is not None


# -- routes --------------------------------------------------------------------------------------
@service.route("POST", "/register")
async def register(body: RegisterIn, uow: UnitOfWork) -> UserOut:
    """Create a user and log them in; emits UserRegistered then UserLoggedIn."""
    # Authorization before existence, so a refused bootstrap does not reveal which names are taken.
    if body.bootstrap and await _admin_exists(uow):
        raise HttpError("Not authorized", status=403)
    if await _find_user(uow, body.username) is not None:
        raise Conflict("user already exists")
    password_hash = await hash_password(body.password)
    now = uow.clock.timestamp()
    user_id = uow.new_id()
    user = {"id": user_id, "username": body.username, "role": body.role, "last_login": None,
            "created_at": now, "updated_at": now}
    uow.execute(users.insert().values(**user, password_hash=password_hash))
    if body.bootstrap:
        uow.execute(bootstrap_claim.insert().values(slot=BOOTSTRAP_SLOT, user_id=user["id"]))
    token, logged_in = open_session(uow, user, now)
    _announce(uow, user_id, UserRegistered(id=user_id, username=body.username, role=body.role), logged_in)
    return _out(user, token)


@service.route("POST", "/login")
async def login(body: LoginIn, uow: UnitOfWork) -> UserOut:
    """Check the password and open a new session; emits UserLoggedIn."""
    row = await _find_user(uow, body.username)
    valid = await verify_password(row["password_hash"] if row else None, body.password)
    if row is None or not valid:
        raise HttpError(INVALID_CREDENTIALS, status=401)
    user = dict(row)
    token, logged_in = open_session(uow, user, uow.clock.timestamp())
    _announce(uow, user["id"], logged_in)
    return _out(user, token)


@service.route("POST", "/logout")
async def logout(request: Request, uow: UnitOfWork) -> dict[str, str]:
    """Revoke the session named by X-Session-ID."""
    session_id, _ = await _active_session(uow, request)
    sessions.revoke(uow, session_id)
    return {"status": "success"}


@service.route("GET", "/auth")
async def authenticate(request: Request, uow: UnitOfWork) -> UserOut:
    """The user of a live session (400 "invalid session" if unknown or logged out)."""
    token, row = await _active_session(uow, request)
    return _out(row, token)


@service.route("GET", "/users")
async def list_users(uow: UnitOfWork) -> list[UserOut]:
    """Every user, admins and customers, oldest first."""
    rows = await uow.fetch_all(select(users).order_by(users.c.created_at, users.c.id))
    return [_out(r) for r in rows]


@service.route("GET", "/admins/exists")
async def admins_exist(uow: UnitOfWork) -> dict[str, bool]:
    """Whether any admin exists (the gateway's bootstrap rule)."""
    return {"exists": await _admin_exists(uow)}


__all__ = ["service"]
