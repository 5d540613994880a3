"""The graph page (in place of the reference's Neo4j browser): the users as nodes, the friendships as edges,
laid out by a small force simulation, and a chosen user's friends, mutual friends and recommendations.

It loads ``/recommendation/v1/graph`` and follows ``/graph/events`` (SSE): each change is drawn as it
comes and the panel is asked again, so what it shows stays current without polling. The page is one
static file: no build step and no CDN (the machines it runs on may have no internet).
"""

from __future__ import annotations

from importlib.resources import files

PAGE = (files(__package__) / "graph.html").read_text(encoding="utf-8")
