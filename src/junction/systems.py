"""Finding systems: each reference system registers a ``build() -> System`` entry point."""

from __future__ import annotations

from importlib.metadata import entry_points

from junction.runtime import System

GROUP = "junction.systems"


def available() -> list[str]:
    """Names of the installed systems."""
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load(name: str) -> System:
    """The system called ``name``; LookupError naming the known ones otherwise."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            system: System = ep.load()()
            return system
    raise LookupError(f"unknown system {name!r} (known: {', '.join(available()) or 'none'})")
