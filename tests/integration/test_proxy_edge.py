"""The REST proxy edge in front of a service in another process (uvicorn, as `junction serve` runs it), killed and
started again: the fallback answers while it is gone, the edge forwards again once it is back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from junction.clock import VirtualClock
from junction.runtime import Runtime
from tests.unit import toy_proxy
from tests.unit.toy_proxy import FALLBACK
from tests.unit.virtual import drive

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EchoProcess:
    """The toy echo service served alone by uvicorn in a child process."""

    def __init__(self, port: int, data: Path) -> None:
        self.port, self.data = port, data
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.unit.toy_proxy", str(self.port), str(self.data)],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise AssertionError("the echo process did not come up")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@pytest.fixture
def echo_process(tmp_path: Path) -> Iterator[EchoProcess]:
    echo = EchoProcess(free_port(), tmp_path / "echo")
    echo.start()
    try:
        yield echo
    finally:
        echo.kill()


async def test_a_killed_service_gets_the_fallback_and_is_forwarded_to_again_once_back(
        echo_process: EchoProcess, tmp_path: Path) -> None:
    clock = VirtualClock()
    gateway = Runtime(toy_proxy.system(), tmp_path / "gateway", clock=clock, only=[],
                      peers={"echo": f"http://127.0.0.1:{echo_process.port}/echo"})
    await gateway.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gw") as client:
            async def call(method: str, body: bytes = b"") -> httpx.Response:
                return await drive(clock, client.request(method, "/api/items?type=application/json", content=body,
                                                         headers={"content-type": "application/json"}))

            answer = await call("GET", b'["SKU001"]')  # a GET with a body, over real HTTP
            assert answer.status_code == 200
            assert answer.content == b'GET|/api/items|type=application/json|application/json|["SKU001"]'
            assert answer.headers["content-type"] == "application/json"
            answer = await drive(clock, client.get("/api/headers", headers={"cookie": "jwt=abc"}))
            assert ["cookie", "jwt=abc"] in answer.json()  # headers both ways, over real HTTP
            assert len(answer.headers.get_list("set-cookie")) == 2

            echo_process.kill()
            started = clock.timestamp()
            for method in ("GET", "POST", "PUT", "DELETE"):
                answer = await call(method, b"{}")
                assert (answer.status_code, answer.text) == (503, FALLBACK)
            assert clock.timestamp() - started >= 3 * 0.35 * 0.75  # GET, PUT and DELETE backed off between tries

            echo_process.start()
            answer = await call("POST", b'{"a":1}')
            assert (answer.status_code, answer.content) == (
                200, b'POST|/api/items|type=application/json|application/json|{"a":1}')
    finally:
        await gateway.stop()
