"""Operating a stopped ebike through the real CLI: parked messages (dlq) and projection replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ebike.contracts.events import UserRegistered
from junction.clock import VirtualClock
from junction.runtime import Runtime
from junction.store import ANY_VERSION, Append, Batch, NewEvent
from junction.systems import load

SUBSCRIPTION = "projection:customers:auth"


def junction(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the junction command line as a user would."""
    return subprocess.run([sys.executable, "-c", "from junction.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


async def run_until_quiet(data: Path) -> list[dict[str, object]]:
    """Start ebike on ``data``, let every consumer catch up, stop; the customers it lists."""
    async with Runtime(load("ebike"), data, clock=VirtualClock(), poll_interval=0.01) as runtime:
        await runtime.settle()
        return (await runtime.client("customers").get("/customers")).json()  # type: ignore[no-any-return]


async def test_a_poison_event_is_listed_retried_dropped_and_the_key_then_flows(tmp_path: Path) -> None:
    async with Runtime(load("ebike"), tmp_path, only=["auth"]) as auth_only:
        store = auth_only.service("auth").store
        broken = NewEvent(id=1, type="UserRegistered", schema_version=1, json='{"id": "u1"}', key="u1",
                          occurred_at=1_767_254_400.0)  # a payload without username and role
        await store.commit(Batch(appends=[Append("user-u1", ANY_VERSION, [broken])]))
        uow = auth_only.service("auth").uow()
        uow.append("user-u1", UserRegistered(id="u1", username="ursula", role="CUSTOMER"), key="u1")
        await uow.commit()

    assert await run_until_quiet(tmp_path) == []  # the key is parked: the good event waits behind
    listed = junction("dlq", "list", "ebike", "--data-dir", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    parked = json.loads(listed.stdout)
    assert [(p["service"], p["subscription"], p["key"], p["event"]) for p in parked] == [
        ("customers", SUBSCRIPTION, "u1", "UserRegistered")] * 2
    assert "ValidationError" in parked[0]["error"] and parked[1]["error"] == "(waiting behind the first)"
    assert "UserRegistered" in junction("dlq", "list", "ebike", "--data-dir", str(tmp_path)).stdout

    retried = junction("dlq", "retry", "ebike", "customers", SUBSCRIPTION, "--key", "u1", "--data-dir", str(tmp_path))
    assert retried.returncode == 0 and "2 message(s) will be retried" in retried.stdout
    assert await run_until_quiet(tmp_path) == []  # still poison: parked again, still in order

    dropped = junction("dlq", "drop", "ebike", "customers", SUBSCRIPTION, "u1", "--data-dir", str(tmp_path))
    assert dropped.returncode == 0, dropped.stderr
    names = [c["name"] for c in await run_until_quiet(tmp_path)]
    assert names == ["ursula"]
    assert "no parked messages" in junction("dlq", "list", "ebike", "--data-dir", str(tmp_path)).stdout

    nothing = junction("dlq", "drop", "ebike", "customers", SUBSCRIPTION, "u1", "--data-dir", str(tmp_path))
    assert nothing.returncode == 1 and nothing.stderr.startswith("error: nothing parked")


async def test_replay_from_the_command_line_rebuilds_the_same_view(tmp_path: Path) -> None:
    async with Runtime(load("ebike"), tmp_path, clock=VirtualClock()) as runtime:
        auth = runtime.client("auth")
        for name in ("ann", "ben", "cid"):
            registered = await auth.post("/register", json={"username": name, "password": "password123",
                                                             "role": "CUSTOMER"})
            assert registered.status_code == 200, registered.text
        customer = registered.json()["id"]
        await runtime.client("customers").patch(f"/customers/{customer}/position",
                                                json={"positionX": 3, "positionY": 0})
        await runtime.settle()
        before = (await runtime.client("customers").get("/customers")).json()

    replayed = junction("replay", "ebike", "--projection", "customers", "--data-dir", str(tmp_path))
    assert replayed.returncode == 0, replayed.stderr
    assert "customers rebuilt" in replayed.stdout and "offline" in replayed.stdout
    async with Runtime(load("ebike"), tmp_path, clock=VirtualClock()) as runtime:
        assert (await runtime.client("customers").get("/customers")).json() == before

    unknown = junction("replay", "ebike", "--projection", "nope", "--data-dir", str(tmp_path))
    assert unknown.returncode == 1 and "has no projection 'nope'" in unknown.stderr
