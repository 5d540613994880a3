"""The social API's shapes and messages (spec sections 0 and 2): Spring Boot's JSON as the reference's
clients read it, and its error texts.

Ids are Java ``Long``s: a path or query id that is not one answers 400 with Spring's conversion message.
Times are Jackson's default ISO form, ``2026-11-29T21:25:15.123+0000``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from junction.errors import BadRequest

FRIENDSHIP_EXISTS = "The friendship already exists"
NO_SUCH_USERS = "The supplied friends do not exist by the friendId or userId"
SELF_FRIENDSHIP = "A user cannot befriend oneself"
NO_SUCH_FRIENDSHIP = "The friendship does not exist"
NO_SUCH_USER = "The user does not exist"
ID_MISMATCH = "The user id in the body must match the user id of the path"
INVALID_USER = "A user needs a firstName and a lastName (strings)"
FRIEND_ID_MISSING = "Required request parameter 'friendId' for method parameter type Long is not present"

LONG_MAX = 2**63 - 1
LONG = re.compile(r"[+-]?[0-9]+")  # what Long.parseLong reads
UP = {"status": "UP"}


def long_id(text: str | None, name: str) -> int:
    """A path or query value as a Java Long, else 400 with Spring's conversion message."""
    if text is None:
        raise BadRequest(f"Required request parameter '{name}' for method parameter type Long is not present")
    if LONG.fullmatch(text) and -LONG_MAX - 1 <= int(text) <= LONG_MAX:
        return int(text)
    raise BadRequest(f"Failed to convert value of type 'java.lang.String' to required type 'java.lang.Long'; "
                     f'nested exception is java.lang.NumberFormatException: For input string: "{text}"')


def spring_time(moment: datetime | float) -> str:
    """An instant as Jackson writes a java.util.Date: ISO, milliseconds, ``+0000``."""
    when = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "+0000")


Name = Annotated[str, Field(max_length=255)]


class Body(BaseModel):
    """A request body: camelCase names, strict types, unknown fields ignored (as Jackson does)."""

    model_config = ConfigDict(alias_generator=to_camel, strict=True, extra="ignore")


class NewUser(Body):
    """``POST /v1/users``."""

    first_name: Name
    last_name: Name


class UserUpdate(Body):
    """``PUT /v1/users/{id}``: the user as a whole, its id included."""

    id: int
    first_name: Name
    last_name: Name


def user_json(row: Any) -> dict[str, Any]:
    """A user as the reference's ``User``: ``{id, firstName, lastName, createdAt, lastModified}``."""
    return {"id": row["id"], "firstName": row["first_name"], "lastName": row["last_name"],
            "createdAt": spring_time(row["created_at"]), "lastModified": spring_time(row["last_modified"])}


def friend_json(row: Any) -> dict[str, Any]:
    """A friendship row as the reference's ``Friend``: ``{id, userId, friendId, createdAt, updatedAt}``."""
    return {"id": row["id"], "userId": row["user_id"], "friendId": row["friend_id"],
            "createdAt": spring_time(row["created_at"]), "updatedAt": spring_time(row["updated_at"])}
