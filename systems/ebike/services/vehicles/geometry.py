"""Plane geometry of the a-bike twin: distances, fixed steps toward a target, nearest places."""

from __future__ import annotations

import math
from collections.abc import Iterable

from ebike.contracts.events import Point

# A step that leaves less than this to go lands on the target, so float error never adds a tick.
EPSILON = 1e-9


def distance(a: Point, b: Point) -> float:
    """Euclidean distance between two points."""
    return math.hypot(b.x - a.x, b.y - a.y)


def step_toward(origin: Point, target: Point, step: float) -> Point:
    """The point ``step`` units from ``origin`` toward ``target``; exactly ``target`` when within reach."""
    gap = distance(origin, target)
    if gap <= step + EPSILON:
        return target
    ratio = step / gap
    return Point(x=origin.x + (target.x - origin.x) * ratio, y=origin.y + (target.y - origin.y) * ratio)


def id_order(item_id: str) -> tuple[int, str]:
    """Sort key putting Base62 Snowflake ids in numeric order (the alphabet is in ASCII order)."""
    return len(item_id), item_id


def nearest(origin: Point, places: Iterable[tuple[str, Point]]) -> tuple[str, Point] | None:
    """The (id, point) closest to ``origin``; ties go to the lowest id; None when there is none."""
    return min(places, key=lambda place: (distance(origin, place[1]), id_order(place[0])), default=None)
