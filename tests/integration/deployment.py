"""A system under `junction up`, driven from a test: start it, read its supervisor's state, kill a process, stop it.

For the integration tests that run a real deployment (``test_faults.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from junction.up import STATE_FILE

T = TypeVar("T")
SERVICE_PORTS = 16  # ports kept for a system's services (ebike has six)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports, below the ephemeral range (32768 up, on Linux), so
    that no outgoing connection (to PostgreSQL or Kafka, say) takes one before its server binds it."""
    for _ in range(100):
        first = random.randrange(20000, 32768 - count)
        try:
            with contextlib.ExitStack() as probes:
                for port in range(first, first + count):
                    probes.enter_context(socket.socket()).bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} consecutive free ports")


def junction(*args: str) -> list[str]:
    """The argv of a junction command, run by this interpreter."""
    return [sys.executable, "-m", "junction", *args]


def wait_for(check: Callable[[], T | None], timeout: float = 60.0, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy (errors count as not yet); that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError, AssertionError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Up:
    """A running `junction up <system>`: its gateway's URL and its data directory."""

    system: str
    data: Path
    base: str

    def state(self) -> dict[str, Any]:
        """The supervisor's state file."""
        state: dict[str, Any] = json.loads((self.data / STATE_FILE).read_text())
        return state

    def children(self) -> dict[str, dict[str, Any]]:
        """Each supervised process's row (name, pid, state, restarts, url)."""
        return {row["name"]: row for row in self.state()["children"]}

    def kill(self, name: str) -> int:
        """SIGKILL the process ``name`` (the supervisor restarts it); the pid it had."""
        pid = int(self.children()[name]["pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 60.0) -> int:
        """Wait until the supervisor runs ``name`` again, in a new process that answers; its pid."""
        def ready() -> int | None:
            row = self.children()[name]
            return int(row["pid"]) if row["state"] == "ready" and row["pid"] not in (None, old_pid) else None

        return wait_for(ready, timeout, f"{name} to be restarted")

    def service_url(self, name: str) -> str:
        """Where the process ``name`` answers (scheme, host and port)."""
        url = httpx.URL(self.children()[name]["url"])
        return f"{url.scheme}://{url.host}:{url.port}"


@contextlib.contextmanager
def running(system: str, data: Path, *options: str, timeout: float = 180.0) -> Iterator[Up]:
    """`junction up <system> *options` on ``data`` until every process is ready; `junction down` afterwards."""
    port = free_ports(SERVICE_PORTS + 1)  # the gateway's, then the services'
    process = subprocess.Popen(junction("up", system, "--data-dir", str(data), "--port", str(port),
                                        "--first-service-port", str(port + 1), *options),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    up = Up(system, data, f"http://127.0.0.1:{port}")

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"`junction up {system}` exited with {process.returncode}")
        return all(c["state"] == "ready" for c in up.children().values())

    try:
        wait_for(ready, timeout=timeout, what="every process")
        yield up
    finally:
        # --purge: the PostgreSQL cluster may live under /var/tmp, outside the test's directory
        subprocess.run(junction("down", system, "--data-dir", str(data), "--purge"), capture_output=True, timeout=60)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
