"""The pipeline's public API (spec section 0): request bodies, readings and the answers' fixed texts.

Bodies are validated strictly: a wrong type is invalid input (a quoted number is not a value, ``true``
is not a number), as are blank names. A reading's timestamp is an ISO 8601 instant with its offset, or
Unix seconds.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

USER_EXISTS = "user already exists"
INVALID_USER = "invalid user: username and email are required strings, email like name@host"
UNAUTHORIZED = "unauthorized"
UNKNOWN_METRIC = "unknown metric"

MAX_LINES = 10_000  # readings per POST /ingest
MAX_BYTES = 5 * 1024 * 1024  # body of a POST /ingest


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _email(value: str) -> str:
    local, at, host = value.partition("@")
    if not at or not local or "." not in host or any(c.isspace() for c in value):
        raise ValueError("must be an e-mail address")
    return value


def _finite_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def _instant(value: Any) -> Any:
    # pydantic would also read numeric strings as Unix time; a timestamp is a string or a number, not both
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be an ISO 8601 string or Unix seconds")
    if isinstance(value, int | float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        raise ValueError("must be an ISO 8601 string (or Unix seconds as a number)")
    return value


Name = Annotated[StrictStr, AfterValidator(_not_blank), Field(max_length=200)]


class NewUser(BaseModel):
    """``POST /users``: the page's ``{"username", "email"}``."""

    model_config = ConfigDict(extra="ignore")

    username: Name
    email: Annotated[StrictStr, AfterValidator(_email), Field(max_length=320)]


class Reading(BaseModel):
    """One reading of ``POST /ingest``."""

    model_config = ConfigDict(extra="ignore")

    source: Name
    metric: Name
    value: Annotated[float, BeforeValidator(_finite_number)]
    timestamp: Annotated[AwareDatetime, BeforeValidator(_instant)]


def minute_of(instant: datetime) -> int:
    """Unix seconds of the start of the minute ``instant`` falls in."""
    seconds = math.floor(instant.timestamp())
    return seconds - seconds % 60
