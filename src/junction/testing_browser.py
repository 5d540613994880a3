"""Browser tests of a system: the real system in a subprocess (`junction run`), driven through Debian's Chromium.

    @pytest.fixture(scope="session")
    def base_url(tmp_path_factory):
        with served("social", tmp_path_factory.mktemp("social")) as url:
            yield url

    @pytest.fixture(scope="module")        # sync Playwright runs its own loop: end it before async tests run
    def browser():
        with chromium() as instance:
            yield instance

Chromium is Debian's (``/usr/bin/chromium``, or ``$JUNCTION_CHROMIUM``), never a downloaded one. Where it is
missing the tests skip, except in CI (``$CI`` set), where the browser tests are how a UI is judged: they fail.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = os.environ.get("JUNCTION_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("JUNCTION_SCREENSHOTS", "var/screenshots"))

# the CLI of this environment (``junction run``), whichever way pytest was started
JUNCTION = [sys.executable, "-c", "import sys; from junction.cli import main; sys.argv[0] = 'junction'; main()"]


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def served(system: str, data_dir: Path, *options: str, env: Mapping[str, str] | None = None,
           timeout: float = 30.0) -> Iterator[str]:
    """``junction run <system>`` on a free port with its data in ``data_dir`` (and ``env`` over this process's
    environment); its URL once ``/health`` answers. Stopped (SIGTERM, then SIGKILL) afterwards; its output is in
    ``data_dir/server.log``."""
    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([*JUNCTION, "run", system, "--port", str(port), "--data-dir",
                                    str(data_dir / "data"), *options], stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:  # waiting for a process to listen: nothing else to wait on
                if process.poll() is not None:
                    raise RuntimeError(f"{system} exited: {log_path.read_text()}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{system} did not start in {timeout:.0f} s")
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium under Playwright (sync API); skips the test without one, except in CI."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: `make browser` installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (`make browser` adds Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``<screenshots>/<name>.png`` (kept by CI for people to look at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
