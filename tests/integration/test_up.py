"""`junction up`: one process per service plus the gateway; a killed service comes back; `down` ends all;
the operator commands (status, events tail, dlq, replay, logs) see the running deployment.

Both topologies: SQLite files shared by the processes, and `--distributed` (PostgreSQL per service,
Kafka between them, both started by `junction up`). One deployment per topology serves every test
of this module.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction import config, operations
from junction.ids import Snowflake
from junction.store import ANY_VERSION, Append, Batch, NewEvent
from junction.systems import load
from tests.conftest import Cli
from tests.integration import deployment
from tests.integration.deployment import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite-files", "distributed"])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """ebike under `junction up`: on shared SQLite files, or on PostgreSQL and Kafka (`--distributed`)."""
    extra = ["--distributed"] if request.param == "distributed" else []
    with deployment.running("ebike", tmp_path_factory.mktemp(request.param), *extra) as up:
        yield up.base, up.data


def gql(client: httpx.Client, query: str, **variables: Any) -> Any:
    answer = client.post("/graphql", json={"query": query, "variables": variables}, timeout=30).json()
    assert "errors" not in answer, answer
    (value,) = answer["data"].values()
    return value


def children(data: Path) -> dict[str, dict[str, Any]]:
    """Each supervised process's row."""
    return deployment.Up("ebike", data, "").children()


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


CUSTOMERS_FROM_AUTH = "projection:customers:auth"


def status(cli: Cli, data: Path) -> dict[str, Any]:
    result = cli("status", "ebike", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def consumer(report: dict[str, Any], service: str, subscription: str) -> dict[str, Any]:
    found: dict[str, Any] = report["services"][service]["consumers"][subscription]
    return found


def parked(cli: Cli, data: Path) -> list[dict[str, Any]]:
    result = cli("dlq", "list", "ebike", "--data-dir", str(data), "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


async def append_poison(data: Path, key: str) -> None:
    """A UserRegistered without username and role in auth's log, written to the store the processes use."""
    deployment = operations.locate(load("ebike"), data, config.load())
    async with operations.open_stores(deployment, ["auth"]) as stores:
        broken = NewEvent(id=Snowflake(1023).next_int(), type="UserRegistered", schema_version=1,
                          json=json.dumps({"id": key}), key=key, occurred_at=time.time())
        await stores["auth"].commit(Batch(appends=[Append(f"user-{key}", ANY_VERSION, [broken])]))


def test_operator_commands_see_processes_lag_events_parked_messages_and_logs(
        running: tuple[str, Path], cli: Cli, request: pytest.FixtureRequest) -> None:
    base, data = running
    distributed = request.node.callspec.params["running"] == "distributed"
    def all_ready() -> dict[str, Any] | None:
        report = status(cli, data)
        return report if all(p["state"] == "ready" for p in report["processes"]) else None

    report = wait_for(all_ready, what="every process ready in `junction status`")
    assert {p["name"] for p in report["processes"]} == {"auth", "accounting", "rentals", "stations", "vehicles",
                                                        "customers", "gateway"}
    assert all(p["pid"] for p in report["processes"])
    via = consumer(report, "customers", CUSTOMERS_FROM_AUTH)["via"]
    if distributed:
        assert report["topology"] == "distributed (junction up)" and report["kafka"] and not report["kafka_error"]
        assert report["database"].startswith("postgresql://") and via == "kafka"
        assert consumer(report, "customers", CUSTOMERS_FROM_AUTH)["group"] == f"customers.{CUSTOMERS_FROM_AUTH}"
    else:
        assert report["kafka"] is None and via == "log"
        assert all(s["relay_lag"] is None for s in report["services"].values())

    # a consumer that stops shows lag; once it runs again the lag (and the relay's) goes back to 0
    customers = children(data)["customers"]["pid"]
    os.kill(customers, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=base) as client:
            gql(client, 'mutation{registerCustomer(username:"carol",password:"password123"){id}}')
        lag = wait_for(lambda: consumer(status(cli, data), "customers", CUSTOMERS_FROM_AUTH)["lag"],
                       what="lag of the stopped customers projection", timeout=20)
        assert lag >= 1
    finally:
        os.kill(customers, signal.SIGCONT)

    def caught_up() -> dict[str, Any] | None:
        now = status(cli, data)
        lags = [c["lag"] for s in now["services"].values() for c in s["consumers"].values()]
        relays = [s["relay_lag"] or 0 for s in now["services"].values()]
        return now if not any(lags) and not any(relays) else None

    wait_for(caught_up, what="every consumer and relay caught up", timeout=30)

    tail = cli("events", "tail", "ebike", "-s", "auth", "-n", "5", "--no-follow", "--data-dir", str(data))
    assert tail.returncode == 0 and "UserRegistered" in tail.stdout and '"username":"carol"' in tail.stdout

    # a poison event is parked, listed, retried by the running consumer, and dropped
    asyncio.run(append_poison(data, "poison-1"))
    rows = wait_for(lambda: [r for r in parked(cli, data) if r["key"] == "poison-1"], what="the poison parked")
    assert [(r["service"], r["subscription"], r["event"], r["attempts"]) for r in rows] == [
        ("customers", CUSTOMERS_FROM_AUTH, "UserRegistered", 4)]
    retried = cli("dlq", "retry", "ebike", "customers", CUSTOMERS_FROM_AUTH, "--key", "poison-1",
                  "--data-dir", str(data))
    assert retried.returncode == 0 and "1 message(s) will be retried" in retried.stdout
    wait_for(lambda: [r["attempts"] for r in parked(cli, data)] == [8], what="the retry, failing again")
    dropped = cli("dlq", "drop", "ebike", "customers", CUSTOMERS_FROM_AUTH, "poison-1", "--data-dir", str(data))
    assert dropped.returncode == 0, dropped.stderr
    assert parked(cli, data) == []

    # a projection rebuilt online by the process that hosts it, on either topology
    replayed = cli("replay", "ebike", "--projection", "customers", "--data-dir", str(data))
    assert replayed.returncode == 0, replayed.stderr
    assert "customers rebuilt" in replayed.stdout and "(online)" in replayed.stdout

    # every process's log, and the servers' when distributed
    logs = cli("logs", "ebike", "-n", "2", "--data-dir", str(data))
    assert logs.returncode == 0, logs.stderr
    names = {line.split(" | ", 1)[0].strip() for line in logs.stdout.splitlines() if " | " in line}
    assert {"auth", "customers", "gateway"} <= names
    assert ({"postgres", "kafka"} <= names) == distributed
