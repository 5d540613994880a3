"""How the pages print money, instants, positions and the extent of the city map."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NONE = "\u2013"  # an en dash stands for a missing value

# What the city spans when it is (nearly) empty: a 100 by 100 square from the origin.
DEFAULT_EXTENT = (0.0, 0.0, 100.0, 100.0)


def euros(cents: int | None) -> str:
    """Integer cents as euros: ``-120`` → ``"-1.20 €"``."""
    if cents is None:
        return NONE
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d} €"


def instant(value: str | None) -> str:
    """An RFC 3339 timestamp, to the second, without the zone noise."""
    if not value:
        return NONE
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def number(value: float | None) -> str:
    """A coordinate with at most one decimal: ``3.0`` → ``"3"``, ``2.46`` → ``"2.5"``."""
    if value is None:
        return NONE
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def plain(value: float) -> str:
    """A coordinate in full, for form fields: ``20.0`` → ``"20"``, ``0.125`` → ``"0.125"``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def percent(value: float | None) -> str:
    """A battery level 0..1 as a percentage."""
    return NONE if value is None else f"{round(value * 100)} %"


@dataclass(frozen=True)
class Extent:
    """The SVG viewBox of the city map and the marker size that suits it."""

    x: float
    y: float
    width: float
    height: float

    @property
    def view_box(self) -> str:
        return f"{number(self.x)} {number(self.y)} {number(self.width)} {number(self.height)}"

    @property
    def unit(self) -> float:
        """Marker radius in map units: about 1/70 of the map, so markers look alike at any zoom."""
        return round(max(self.width, self.height) / 70, 3)


def extent(points: Iterable[dict[str, Any] | None]) -> Extent:
    """A square that holds the default city and every given ``{x, y}``, with a margin."""
    min_x, min_y, max_x, max_y = DEFAULT_EXTENT
    for point in points:
        if point is None:
            continue
        min_x, max_x = min(min_x, point["x"]), max(max_x, point["x"])
        min_y, max_y = min(min_y, point["y"]), max(max_y, point["y"])
    side = max(max_x - min_x, max_y - min_y)
    margin = side * 0.06
    side = math.ceil(side + 2 * margin)
    return Extent(math.floor(min_x - margin), math.floor(min_y - margin), side, side)
