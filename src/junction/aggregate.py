"""Event-sourced aggregates: state rebuilt from a snapshot plus the events after it.

A subclass declares its state as pydantic fields and applies events in ``apply``. Commands call
``record(event)``, which applies the event and keeps it for the unit of work to append with the
version the aggregate was loaded at (optimistic concurrency).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr

from junction.events import Event


class Aggregate(BaseModel):
    """Base of event-sourced aggregates."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stream_type: ClassVar[str] = ""
    snapshot_every: ClassVar[int] = 50

    id: str
    _version: int = PrivateAttr(default=0)
    _pending: list[Event] = PrivateAttr(default_factory=list)

    @classmethod
    def stream_of(cls, aggregate_id: str) -> str:
        """The stream name of one instance."""
        return f"{cls.stream_type or cls.__name__.lower()}-{aggregate_id}"

    @property
    def stream(self) -> str:
        """This instance's stream name."""
        return self.stream_of(self.id)

    @property
    def version(self) -> int:
        """The version loaded from the store (pending events not counted)."""
        return self._version

    @property
    def exists(self) -> bool:
        """True once the aggregate has at least one event, stored or pending."""
        return self._version > 0 or bool(self._pending)

    def apply(self, event: Event) -> None:
        """Change state by one event; subclasses override."""
        raise NotImplementedError(f"{type(self).__name__} cannot apply {event.event_name}")

    def record(self, event: Event) -> None:
        """Apply a new event and keep it for the unit of work to commit."""
        self.apply(event)
        self._pending.append(event)

    def take_pending(self) -> list[Event]:
        """The new events, emptied."""
        pending, self._pending = self._pending, []
        return pending

    def mark_committed(self, version: int) -> None:
        """Called by the unit of work after commit."""
        self._version = version

    def snapshot_data(self) -> dict[str, Any]:
        """The state to snapshot."""
        return self.model_dump(mode="json")

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], version: int) -> Self:
        """Restore from a snapshot."""
        aggregate = cls.model_validate(data)
        aggregate._version = version
        return aggregate
