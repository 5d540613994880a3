"""`junction status` and `junction logs` on what a user has: SQLite data with a consumer behind, a supervisor's logs.

(The same commands on PostgreSQL and Kafka are exercised against a running `junction up --distributed`
in ``tests/integration/test_up.py``.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from junction import systems
from junction.clock import VirtualClock
from junction.logview import LogView, last_lines
from junction.runtime import Runtime
from junction.supervisor import ProcessSpec, Supervisor
from tests.conftest import Cli

CUSTOMERS_FROM_AUTH = "projection:customers:auth"


@pytest.fixture(scope="module")
def lagging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ebike data where the customers projection stopped reading auth's log two events before its head."""
    data = tmp_path_factory.mktemp("ebike")

    async def run() -> None:
        async with Runtime(systems.load("ebike"), data, clock=VirtualClock(), poll_interval=0.01) as runtime:
            auth = runtime.client("auth")
            await auth.post("/register", json={"username": "ann", "password": "password123", "role": "CUSTOMER"})
            await runtime.settle()
            await runtime.pause_consumers("customers", "auth")
            await auth.post("/register", json={"username": "bob", "password": "password123", "role": "CUSTOMER"})

    asyncio.run(run())
    return data


def test_status_shows_each_subscriptions_lag_behind_its_source_log(lagging: Path, cli: Cli) -> None:
    result = cli("status", "ebike", "--data-dir", str(lagging), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["topology"] == "embedded (SQLite files)" and report["processes"] == [] and report["kafka"] is None
    auth, customers = report["services"]["auth"], report["services"]["customers"]
    behind = customers["consumers"][CUSTOMERS_FROM_AUTH]
    assert behind["via"] == "log" and behind["source"] == "auth"
    assert 0 < behind["position"] < auth["head"]
    assert behind["lag"] == auth["head"] - behind["position"]
    caught_up = customers["consumers"]["projection:customers:customers"]
    assert caught_up["lag"] == 0
    assert auth["relay_lag"] is None  # no Kafka, no relay

    table = cli("status", "ebike", "--data-dir", str(lagging))
    assert table.returncode == 0, table.stderr
    for heading in ("log head", "relay lag", "subscription", "position", "lag", CUSTOMERS_FROM_AUTH):
        assert heading in table.stdout


def test_status_of_a_stopped_distributed_deployment_says_how_to_start_it(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "pg" / "data").mkdir(parents=True)  # what `junction up --distributed` leaves behind
    result = cli("status", "ebike", "--data-dir", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ran distributed" in result.stderr and "junction up ebike --distributed" in " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def supervised_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory whose supervisor ran a process that crashed once (exit 3) and one that logs JSON."""
    data = tmp_path_factory.mktemp("up")
    crashing = ProcessSpec("accounting", [sys.executable, "-c", "print('booting'); raise SystemExit(3)"])
    talking = ProcessSpec("gateway", [sys.executable, "-c", "import json; [print(json.dumps({'event': 'served', "
                                      "'level': 'info', 'timestamp': 'T', 'n': n}), flush=True) for n in range(30)]; "
                                      "import time; time.sleep(60)"])

    async def run() -> None:
        supervisor = Supervisor([talking, crashing], data / "logs", data / "junction-up.json")
        running = asyncio.create_task(supervisor.run())
        for _ in range(100):
            await asyncio.sleep(0.1)
            if supervisor.status()[1]["restarts"] >= 1:
                break
        supervisor.stop()
        await asyncio.wait_for(running, 15)

    asyncio.run(run())
    yield data


def test_logs_show_a_crash_and_its_restart_in_the_process_log(supervised_logs: Path, cli: Cli) -> None:
    result = cli("logs", "ebike", "accounting", "--data-dir", str(supervised_logs))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("booting" in line for line in lines)
    exited = [line for line in lines if "process exited" in line]
    assert exited and "exit_code=3" in exited[0] and "warning" in exited[0]
    assert sum("starting process" in line for line in lines) >= 2  # started, then restarted


def test_logs_of_all_processes_are_prefixed_and_limited(supervised_logs: Path, cli: Cli) -> None:
    result = cli("logs", "ebike", "-n", "3", "--data-dir", str(supervised_logs))
    assert result.returncode == 0, result.stderr
    gateway = [line for line in result.stdout.splitlines() if line.startswith("gateway")]
    assert len(gateway) == 3
    assert gateway[1].endswith("served n=29")  # rendered: time level event key=value
    assert "process stopped" in gateway[2] and "exit_code=-15" in gateway[2]  # SIGTERM from the supervisor
    assert any(line.startswith("accounting") for line in result.stdout.splitlines())
    raw = cli("logs", "ebike", "gateway", "-n", "2", "--raw", "--data-dir", str(supervised_logs))
    assert json.loads(raw.stdout.splitlines()[0]) == {"event": "served", "level": "info", "timestamp": "T", "n": 29}


def test_logs_name_what_exists(supervised_logs: Path, tmp_path: Path, cli: Cli) -> None:
    unknown = cli("logs", "ebike", "rentals", "--data-dir", str(supervised_logs))
    assert unknown.returncode == 1 and "no log named 'rentals'" in unknown.stderr
    assert "accounting, gateway" in unknown.stderr
    nothing = cli("logs", "ebike", "--data-dir", str(tmp_path))
    assert nothing.returncode == 1 and "no logs for ebike" in nothing.stderr


def test_a_log_is_followed_across_appends_partial_lines_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("one\ntwo\nthr")
    assert last_lines(log, 5) == (["one", "two"], len("one\ntwo\n"))
    printed: list[str] = []

    class Capture:
        def print(self, text: object, **_: object) -> None:
            printed.append(str(text))

    view = LogView(Capture(), raw=True, prefixed=False)  # type: ignore[arg-type]
    view.show({"x": log}, 1)
    assert printed == ["two"]
    with log.open("a") as handle:
        handle.write("ee\nfour\n")
    view.poll({"x": log})
    assert printed == ["two", "three", "four"]
    log.write_text("new\n")  # rotated: read again from the start
    view.poll({"x": log})
    assert printed[-1] == "new"
