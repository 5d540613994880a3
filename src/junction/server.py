"""Serving a runtime over HTTP with uvicorn, and the run file that lets other commands find it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import uvicorn

from junction.clock import Clock, make_clock
from junction.runtime import Runtime

RUN_FILE = "junction-run.json"
CLOCK_FILE = "junction-clock.json"


def clock_for(data_dir: Path, time_scale: float) -> Clock:
    """The platform clock of a data directory: a scaled run keeps its origin across restarts, so
    platform time never jumps back (timers and timestamps already stored stay in the past)."""
    if time_scale == 1:
        return make_clock()
    record = data_dir / CLOCK_FILE
    origin = None
    with contextlib.suppress(OSError, ValueError, KeyError):
        saved = json.loads(record.read_text())
        if float(saved["scale"]) == time_scale:
            origin = float(saved["origin"])
    if origin is None:
        origin = time.time()
        data_dir.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"scale": time_scale, "origin": origin}))
    return make_clock(time_scale, origin)


def write_run_file(data_dir: Path, system: str, host: str, port: int) -> None:
    """Record where a running system answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / RUN_FILE).write_text(json.dumps({"system": system, "pid": os.getpid(), "url": f"http://{host}:{port}"}))


def running_url(data_dir: Path) -> str | None:
    """The URL of the system running on ``data_dir``, if its process is alive."""
    try:
        info: dict[str, Any] = json.loads((data_dir / RUN_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return str(info["url"])


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a server's main coroutine to its end on uvloop when it is installed (``uvicorn[standard]`` brings it),
    else on asyncio's own loop: ``uvicorn.run`` picks uvloop the same way, and it halves the event loop's share of
    each request (socket reads and writes, callbacks, timers) on the serving hot path."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - an install without uvicorn's standard extras
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


async def serve(runtime: Runtime, host: str, port: int,
                start: Callable[[Runtime], Awaitable[None]] | None = None, run_file: bool = True) -> None:
    """Start the runtime (``start``, default ``Runtime.start``), serve it until interrupted, stop it cleanly."""
    await (start or Runtime.start)(runtime)
    # log_config=None: uvicorn's warnings go through the process's own log format (``junction.logs``)
    # access_log=False: no access lines are printed at "warning" anyway, and uvicorn would still build each one's
    # arguments per request
    config = uvicorn.Config(runtime.app, host=host, port=port, log_level="warning", lifespan="off", log_config=None,
                            access_log=False)
    server = uvicorn.Server(config)
    if run_file:
        write_run_file(runtime.data_dir, runtime.system.name, host, port)
    try:
        await server.serve()
    finally:
        if run_file:
            with contextlib.suppress(FileNotFoundError):
                (runtime.data_dir / RUN_FILE).unlink()
        await runtime.stop()
