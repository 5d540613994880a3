"""The public API's request bodies and answers (spec section 0), and the internal calls' bodies.

Answers serialise in camelCase as the spec writes them; every request body is validated here, at the
edge of the service that receives it, before anything is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

Role = Literal["USER", "ADMIN", "ANALYST"]
Status = Literal["PENDING_VERIFICATION", "APPROVED", "REJECTED"]
WebinarStatus = Literal["SCHEDULED", "LIVE", "ENDED"]
MAX_DOCUMENT = 10 * 1024 * 1024  # the proof document's limit (spec: at most 10 MB)


class Model(BaseModel):
    """camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True,
                              extra="forbid")


def iso(timestamp: float) -> str:
    """A platform timestamp as ISO 8601 UTC with a Z."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


class Login(Model):
    """``POST /api/auth/login``."""

    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class Registration(Model):
    """The text fields of ``POST /api/auth/register`` (the document comes beside them)."""

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(min_length=8, max_length=256)
    full_name: str = Field(min_length=1, max_length=200)
    licence_number: str = Field(min_length=1, max_length=64)

    @field_validator("email")
    @classmethod
    def lower(cls, value: str) -> str:
        """E-mail addresses compare case-insensitively."""
        return value.strip().lower()

    @field_validator("full_name", "licence_number")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """Blank names are not names."""
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class NewUser(Model):
    """bff → content: a validated registration, its password already hashed, its document base64."""

    email: str
    password_hash: str
    full_name: str
    licence_number: str
    role: Role = "USER"
    status: Status = "PENDING_VERIFICATION"
    media_type: str | None = None
    document: str | None = None  # base64


class ArticleIn(Model):
    """``POST /api/admin/articles``."""

    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=100_000)
    category: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class CommentIn(Model):
    """``POST /api/articles/{id}/comments``."""

    text: str = Field(min_length=1, max_length=5_000)

    @field_validator("text")
    @classmethod
    def not_blank(cls, value: str) -> str:
        """A comment says something."""
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class AuthoredComment(CommentIn):
    """bff → content: the comment and who wrote it."""

    user_id: str


class WebinarIn(Model):
    """``POST /api/admin/webinars``."""

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20_000)
    category: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    starts_at: AwareDatetime
    duration_minutes: int = Field(ge=1, le=24 * 60)
    points: int = Field(ge=0, le=1000)


class UserRef(Model):
    """bff → content: which user a subscription is for."""

    user_id: str


class StatusChange(Model):
    """scheduler → content: a step of the go-live saga, or the end."""

    status: WebinarStatus
    expected: WebinarStatus
    reason: str | None = None


class Review(Model):
    """bff → content: an admin's decision on a proof."""

    status: Literal["APPROVED", "REJECTED"]


class Beat(Model):
    """edge → live: a viewer joined, beat or left a room."""

    user_id: str
