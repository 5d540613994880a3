"""Typed events: pydantic models registered by name, schema versions and upcasters.

An ``Event`` subclass is a payload. Declaring ``class RentalStarted(Event)`` registers it under its
class name (or under ``event_name`` when the class sets one); ``schema_version`` says which shape
it has now. An upcaster turns an older stored
payload into the next version's dict, so old logs keep loading after a schema change.

The ``Envelope`` is what the store keeps and what consumers receive: the payload plus its
position in the stream and in the service's log, and its causal metadata.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownEventError(LookupError):
    """An event type name that nothing registered."""


class Event(BaseModel):
    """Base of every event payload; fields serialise in camelCase as the contracts say."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, frozen=True)

    event_name: ClassVar[str] = "Event"  # a subclass may set its own; its class name otherwise
    schema_version: ClassVar[int] = 1  # raise it (and add an upcaster) when the payload's shape changes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_name" not in cls.__dict__:
            cls.event_name = cls.__name__
        registry.register(cls)

    def payload(self) -> dict[str, Any]:
        """The JSON-ready payload (camelCase keys)."""
        return self.model_dump(mode="json", by_alias=True)

    def payload_json(self) -> str:
        """The payload as JSON text (camelCase keys)."""
        return self.model_dump_json(by_alias=True)


class EventRegistry:
    """Event classes by name, and upcasters by (name, from_version)."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type[Event]) -> None:
        """Register an event class under its name. The same class defined again (a module reloaded, a test's
        local class) replaces the earlier one; another class under a taken name is an error, because the
        log could no longer say which of the two an event is (give one an ``event_name`` of its own)."""
        earlier = self._types.get(cls.event_name)
        if earlier is not None and (earlier.__module__, earlier.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"event name {cls.event_name!r} is taken by {earlier.__module__}.{earlier.__qualname__}; "
                             f"give {cls.__module__}.{cls.__qualname__} an event_name of its own")
        self._types[cls.event_name] = cls

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: turn payloads of ``name`` at ``from_version`` into ``from_version + 1``."""

        def register(fn: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = fn
            return fn

        return register

    def get(self, name: str) -> type[Event]:
        """The class registered under ``name``."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEventError(f"unknown event type {name!r}") from None

    def known(self, name: str) -> bool:
        """True when ``name`` is registered."""
        return name in self._types

    def load(self, name: str, schema_version: int, data: dict[str, Any]) -> Event:
        """Upcast a stored payload to the current version and validate it."""
        cls = self.get(name)
        version = schema_version
        while version < cls.schema_version:
            step = self._upcasters.get((name, version))
            if step is None:
                raise UnknownEventError(f"no upcaster for {name} v{version}")
            data = step(data)
            version += 1
        return cls.model_validate(data)


registry = EventRegistry()


@dataclass(frozen=True, slots=True)
class Envelope:
    """One stored event with its metadata; ``position`` is its place in the service's log."""

    id: str
    type: str
    stream: str
    version: int
    key: str
    occurred_at: datetime
    schema_version: int
    data: dict[str, Any]
    source: str = ""
    position: int = 0
    causation_id: str | None = None
    correlation_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def event(self) -> Event:
        """The typed payload, upcast to the current schema."""
        return registry.load(self.type, self.schema_version, self.data)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Envelope:
        """The inverse of ``to_json`` (parked messages, broker records)."""
        return cls(
            id=raw["id"], type=raw["type"], stream=raw["stream"], version=raw["version"], key=raw["key"],
            occurred_at=datetime.fromisoformat(raw["occurredAt"]), schema_version=raw["schemaVersion"],
            data=raw["data"], source=raw.get("source", ""), position=raw.get("position", 0),
            causation_id=raw.get("causationId"), correlation_id=raw.get("correlationId"),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready view (for tails, DLQ listings and transports)."""
        return {
            "id": self.id,
            "type": self.type,
            "stream": self.stream,
            "version": self.version,
            "key": self.key,
            "occurredAt": self.occurred_at.isoformat(),
            "schemaVersion": self.schema_version,
            "source": self.source,
            "position": self.position,
            "causationId": self.causation_id,
            "correlationId": self.correlation_id,
            "data": self.data,
        }


def dumps(data: Any) -> str:
    """Compact JSON used for stored payloads."""
    return json.dumps(data, separators=(",", ":"), default=str)
