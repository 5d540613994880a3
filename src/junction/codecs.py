"""JSON for events that leave the platform on a named topic (``Service.export``), shaped as a contract says.

    codec = JsonCodec(fields={"user_id": "userId", "email": "email"}, constants={"event": "user.created"})
    user.export("user-events", UserCreated, codec)      # value: {"event":"user.created","user_id":1,"email":"..."}

A record's value is compact UTF-8 JSON: first the ``constants`` (fixed members the contract names, such
as a type tag), then each output member from the event's JSON payload at the path ``fields`` maps it to
(``"userDetails.email"`` reaches into an object). Without ``fields`` the payload goes out as it is.
Reading a record back inverts the mapping (the constants are checked and dropped), so a junction
subscription to the topic gets the event's payload again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from junction.events import Event


class JsonCodec:
    """A ``junction.service.Codec`` writing events as JSON objects of a contract's shape."""

    def __init__(self, fields: Mapping[str, str] | None = None, constants: Mapping[str, Any] | None = None) -> None:
        self.fields = dict(fields) if fields is not None else None
        self.constants = dict(constants or {})
        if self.fields is not None and (clash := sorted(set(self.fields) & set(self.constants))):
            raise ValueError(f"members both mapped and constant: {', '.join(clash)}")
        shape = json.dumps({"fields": self.fields, "constants": self.constants}, sort_keys=True)
        # names the shape in each record's headers, as AvroCodec's fingerprint names its schema
        self.schema_id = "json-" + hashlib.sha256(shape.encode()).hexdigest()[:16]

    def bind(self, event: type[Event]) -> None:
        """Refuse an event whose payload lacks a mapped path's first member."""
        if self.fields is None:
            return
        members = {info.alias or name for name, info in event.model_fields.items()}
        missing = sorted(path for path in self.fields.values() if path.split(".")[0] not in members)
        if missing:
            raise ValueError(f"{event.event_name} has no payload member for {', '.join(missing)}")

    def encode(self, payload: dict[str, Any]) -> bytes:
        """The record value: the constants, then the mapped members (or the whole payload)."""
        if self.fields is None:
            shaped = {**self.constants, **payload}
        else:
            shaped = {**self.constants, **{name: _get(payload, path) for name, path in self.fields.items()}}
        return json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode()

    def decode(self, data: bytes, schema_id: str | None = None) -> dict[str, Any]:
        """The event's payload from a record value (ValueError when it is not this codec's shape)."""
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("a JSON-coded event is an object")
        for name, constant in self.constants.items():
            if value.get(name) != constant:
                raise ValueError(f"member {name!r} is {value.get(name)!r}, not {constant!r}")
        if self.fields is None:
            return {k: v for k, v in value.items() if k not in self.constants}
        payload: dict[str, Any] = {}
        for name, path in self.fields.items():
            if name in value:
                _set(payload, path, value[name])
        return payload


def _get(payload: Mapping[str, Any], path: str) -> Any:
    """The member at a dotted path (None when a step is missing)."""
    current: Any = payload
    for step in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def _set(payload: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at a dotted path, making the objects on the way."""
    *parents, last = path.split(".")
    current = payload
    for step in parents:
        current = current.setdefault(step, {})
    current[last] = value


__all__ = ["JsonCodec"]
