"""Log configuration for junction's processes: JSON lines when not on a terminal (collectors, the
supervisor's log files), readable lines on a terminal; INFO and above unless ``log_level`` says
(``JUNCTION_LOG_LEVEL`` or the config file, read by the caller through ``junction.config``).

Libraries that log through the standard library (aiokafka, asyncpg, uvicorn) get the same line
format, with their logger's name, from WARNING up (DEBUG when the level is DEBUG): their INFO lines
are routine noise in a service's log.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class _StandardErrorHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at each line (tests and daemons replace it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure(level_name: str = "INFO") -> None:
    """Set up structlog and the standard library's root logger for this process (again when the level changes)."""
    level = getattr(logging, level_name.upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # sys.stderr is looked up at each use, not bound once: it may be replaced (test capture, daemons)
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StandardErrorHandler)), None)
    if handler is None:  # added once, next to any handler already there (pytest's capture, say)
        handler = _StandardErrorHandler()
        root.addHandler(handler)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, stamp],
    ))
    root.setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
