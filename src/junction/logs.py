"""Log configuration for junction's processes: JSON lines when not on a terminal (collectors, the
supervisor's log files), readable lines on a terminal; INFO and above unless JUNCTION_LOG_LEVEL says."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure() -> None:
    """Set up structlog once per process."""
    level = getattr(logging, os.environ.get("JUNCTION_LOG_LEVEL", "INFO").upper(), logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer() if sys.stderr.isatty() else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # sys.stderr is looked up at each use, not bound once: it may be replaced (test capture, daemons)
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
