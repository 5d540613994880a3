"""A local process supervisor: one OS process per service, restarted when it dies.

``junction up <system> --distributed`` runs one; ``junction down`` asks it to stop (SIGTERM to the
pid in its state file), and it stops its children in reverse start order. Restarts back off
exponentially (1 s doubling to 30 s) and the backoff resets once a process has stayed up for a
minute, so a crash loop does not spin while a one-off crash comes back at once.

Each process writes its output (stdout and stderr) to ``<log_dir>/<name>.log``, which the supervisor
appends to across restarts, adding a JSON line of its own whenever it starts a process or sees one
exit, so ``junction logs`` shows a crash and its restart in place. The state file (JSON) holds the
supervisor's pid, what the caller describes the deployment as (``info``) and every process's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

STABLE_AFTER = 60.0
MAX_BACKOFF = 30.0


@dataclass
class ProcessSpec:
    """How to run one supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # where it answers HTTP, for the status view
    health: str | None = None  # GET this until it answers 200: the process is then "ready"


@dataclass
class Supervised:
    """A supervised process's live state."""

    spec: ProcessSpec
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    state: str = "starting"
    last_exit: int | None = None
    restart_at: float = 0.0

    def describe(self) -> dict[str, Any]:
        """A JSON-ready view for status displays."""
        alive = self.process is not None and self.process.returncode is None
        return {"name": self.spec.name, "pid": self.process.pid if alive and self.process else None,
                "state": self.state, "restarts": self.restarts, "last_exit": self.last_exit,
                "uptime": round(time.monotonic() - self.started_at, 1) if alive else 0.0, "url": self.spec.url}


class Supervisor:
    """Starts processes, restarts the ones that die, stops them all on request."""

    def __init__(self, specs: list[ProcessSpec], log_dir: Path, state_file: Path,
                 on_change: Callable[[list[dict[str, Any]]], None] | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.children = [Supervised(spec) for spec in specs]
        self.log_dir = log_dir
        self.state_file = state_file
        self.on_change = on_change
        self.info = info or {}  # the deployment, as the operator commands need to know it
        self._stopping = asyncio.Event()
        self._last_written: list[tuple[Any, ...]] = []

    async def run(self) -> None:
        """Supervise until ``stop`` is called or SIGTERM/SIGINT arrives."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopping.set)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_state()
        try:
            for child in self.children:
                await self._start(child)
            while not self._stopping.is_set():
                for child in self.children:
                    await self._check(child)
                self._changed()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), 0.5)
        finally:
            await self._stop_all()
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()

    def stop(self) -> None:
        """Ask the supervisor to stop everything."""
        self._stopping.set()

    def status(self) -> list[dict[str, Any]]:
        """Every process's state."""
        return [child.describe() for child in self.children]

    def log_file(self, name: str) -> Path:
        """Where the process ``name`` writes its output."""
        return self.log_dir / f"{name}.log"

    def _note(self, child: Supervised, event: str, **fields: Any) -> None:
        """Append a supervisor line to the child's log, in the JSON shape of the processes' own lines."""
        line = {"event": event, "process": child.spec.name, "logger": "supervisor",
                "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"), **fields}  # as structlog's
        with self.log_file(child.spec.name).open("a") as log:
            log.write(json.dumps(line) + "\n")

    async def _start(self, child: Supervised) -> None:
        self._note(child, "starting process", level="info", argv=child.spec.argv, restarts=child.restarts)
        log = open(self.log_file(child.spec.name), "ab")  # noqa: SIM115 - the child owns it
        child.process = await asyncio.create_subprocess_exec(
            *child.spec.argv, env={**os.environ, **child.spec.env}, stdout=log, stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the supervisor only
        )
        log.close()
        child.started_at = time.monotonic()
        child.state = "running"

    async def _check(self, child: Supervised) -> None:
        process = child.process
        if process is None or process.returncode is None:
            if process is not None and time.monotonic() - child.started_at > STABLE_AFTER:
                child.backoff = 1.0
            if child.state == "running" and await self._healthy(child):
                child.state = "ready"
            return
        child.last_exit = process.returncode
        if child.state in ("running", "ready"):
            child.state = "restarting"
            child.restart_at = time.monotonic() + child.backoff
            self._note(child, "process exited", level="warning", exit_code=process.returncode,
                       restart_in=child.backoff)
        if time.monotonic() >= child.restart_at:
            child.restarts += 1
            child.backoff = min(MAX_BACKOFF, child.backoff * 2)
            await self._start(child)

    async def _healthy(self, child: Supervised) -> bool:
        if child.spec.health is None:
            return True
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                return (await client.get(child.spec.health)).status_code == 200
        except httpx.HTTPError:
            return False

    async def _stop_all(self) -> None:
        for child in reversed(self.children):
            process = child.process
            if process is not None and process.returncode is None:
                process.terminate()
        for child in reversed(self.children):
            process = child.process
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
            if child.state != "stopped":
                self._note(child, "process stopped", level="info", exit_code=process.returncode)
            child.state = "stopped"
        self._changed()

    def _changed(self) -> None:
        rows = self.status()
        if [(r["name"], r["pid"], r["restarts"], r["state"]) for r in rows] != self._last_written:
            self._write_state()
        if self.on_change is not None:
            self.on_change(rows)

    def _write_state(self) -> None:
        """Who runs: the supervisor's pid (for `junction down`) and each child's (for operators and tests)."""
        rows = self.status()
        self._last_written = [(r["name"], r["pid"], r["restarts"], r["state"]) for r in rows]
        if not self._stopping.is_set() or self.state_file.exists():
            temporary = self.state_file.with_suffix(".tmp")
            temporary.write_text(json.dumps({"pid": os.getpid(), **self.info, "children": rows}))
            temporary.replace(self.state_file)


def running_state(state_file: Path) -> dict[str, Any] | None:
    """The state a live supervisor wrote to ``state_file``; None when there is none or its process is gone."""
    try:
        state: dict[str, Any] = json.loads(state_file.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def stop_running(state_file: Path, timeout: float = 30.0) -> bool:
    """Ask the supervisor recorded in ``state_file`` to stop and wait for it; False if none runs."""
    try:
        pid = int(json.loads(state_file.read_text())["pid"])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, KeyError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs. A zombie does not: it has exited, only its parent has not reaped it
    yet (a test or a process manager that started `junction up` and now waits for `junction down`)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
