"""The process supervisor restarts a process that dies and stops everything on request."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from junction.supervisor import ProcessSpec, Supervisor, stop_running


async def test_a_dying_process_is_restarted_and_stop_ends_all(tmp_path: Path) -> None:
    flaky = ProcessSpec("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"])
    steady = ProcessSpec("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([steady, flaky], tmp_path / "logs", tmp_path / "state.json")
    running = asyncio.create_task(supervisor.run())
    for _ in range(100):  # the first restart comes after 1 s of backoff
        await asyncio.sleep(0.1)
        status = {s["name"]: s for s in supervisor.status()}
        if status["flaky"]["restarts"] >= 1:
            break
    assert status["flaky"]["restarts"] >= 1 and status["flaky"]["last_exit"] == 3
    assert status["steady"]["restarts"] == 0 and status["steady"]["pid"] is not None
    assert (tmp_path / "state.json").exists()
    steady_pid = status["steady"]["pid"]
    supervisor.stop()
    await asyncio.wait_for(running, 15)
    assert all(s["state"] == "stopped" for s in supervisor.status())
    assert not (tmp_path / "state.json").exists()
    assert not Path(f"/proc/{steady_pid}").exists() or "zombie" in Path(f"/proc/{steady_pid}/status").read_text()


def test_down_sees_a_supervisor_that_exited_before_its_parent_reaped_it(tmp_path: Path) -> None:
    # The caller of `junction down` may be the parent of `junction up` (a test, a process manager):
    # until it reaps the exited supervisor, that pid is a zombie, which has stopped all the same.
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        state = tmp_path / "state.json"
        state.write_text(json.dumps({"pid": supervisor.pid, "children": []}))
        assert stop_running(state, timeout=5)  # SIGTERM ends it; unreaped, it counts as stopped
    finally:
        supervisor.kill()
        supervisor.wait()
