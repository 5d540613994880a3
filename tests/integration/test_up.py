"""`junction up`: one process per service plus the gateway; a killed service comes back; `down` ends all.

Both topologies: SQLite files shared by the processes, and `--distributed` (PostgreSQL per service,
Kafka between them, both started by `junction up`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def junction(*args: str) -> list[str]:
    return [sys.executable, "-m", "junction", *args]


def wait_for(check: Any, timeout: float = 60.0, what: str = "") -> Any:
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


@pytest.fixture(params=["sqlite-files", "distributed"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """ebike under `junction up`: on shared SQLite files, or on PostgreSQL and Kafka (`--distributed`)."""
    port, first = free_port(), free_port()
    extra = ["--distributed"] if request.param == "distributed" else []
    process = subprocess.Popen(junction("up", "ebike", "--data-dir", str(tmp_path), "--port", str(port),
                                        "--first-service-port", str(first + 100), *extra),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: all(c["state"] == "ready" for c in children(tmp_path).values()), timeout=180,
                 what="every process")
        yield base, tmp_path
    finally:
        subprocess.run(junction("down", "ebike", "--data-dir", str(tmp_path)), capture_output=True, timeout=60)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def gql(client: httpx.Client, query: str, **variables: Any) -> Any:
    answer = client.post("/graphql", json={"query": query, "variables": variables}, timeout=30).json()
    assert "errors" not in answer, answer
    (value,) = answer["data"].values()
    return value


def children(data: Path) -> dict[str, dict[str, Any]]:
    state = json.loads((data / "junction-up.json").read_text())
    return {row["name"]: row for row in state["children"]}


def test_services_in_their_own_processes_survive_a_kill(running: tuple[str, Path]) -> None:
    base, data = running
    with httpx.Client(base_url=base) as admin, httpx.Client(base_url=base) as customer:
        gql(admin, 'mutation{registerAdmin(username:"admin1",password:"password123"){id}}')
        gql(customer, 'mutation{registerCustomer(username:"alice",password:"password123"){id}}')
        payment = gql(customer, "mutation{createPayment(amount:700){id}}")
        gql(admin, "mutation($id:ID!){confirmPayment(id:$id){status}}", id=payment["id"])
        assert gql(customer, "{creditBalance}") == 700

        victim = children(data)["accounting"]
        os.kill(victim["pid"], signal.SIGKILL)  # the supervisor brings it back
        wait_for(lambda: children(data)["accounting"]["restarts"] >= 1 and children(data)["accounting"]["pid"],
                 what="a restarted accounting process")
        assert wait_for(lambda: gql(customer, "{creditBalance}") == 700, what="accounting to answer again")
        names = wait_for(lambda: [c["name"] for c in gql(admin, "{customers{name}}")] or None, what="customers")
        assert names == ["alice"]
    assert set(children(data)) == {"auth", "accounting", "rentals", "stations", "vehicles", "customers", "gateway"}
