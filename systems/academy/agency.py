"""The accrediting agency adapter: how many points a webinar is worth, asked once it has ended.

The thesis requests the points from a government agency when the number of viewers is known. No such
agency is reachable in development, so the simulated one accredits what the webinar announced; a real
adapter replaces ``request_points`` (same arguments, same answer).
"""

from __future__ import annotations

THRESHOLD = 0.8  # a viewer earns the points with at least 80 % of the duration watched


async def request_points(webinar_id: str, announced: int, viewers: int) -> int:
    """The points the agency accredits for one viewer of ``webinar_id`` (simulated: the announced ones)."""
    if viewers < 0 or announced < 0:
        raise ValueError("viewers and points cannot be negative")
    return announced
