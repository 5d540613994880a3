"""The ``junction`` command line: help everywhere, one-line errors with exit codes, dlq, bench.

Error paths run the installed entry point in a subprocess, so ``main()``'s error handling and the
real exit codes are what is tested. ``COLUMNS`` is removed from the environment: output goes to a
pipe, as when a script reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from junction import systems
from junction.cli import app
from junction.ids import Snowflake
from junction.runtime import Runtime
from junction.sqlite import SqliteStore
from junction.store import ANY_VERSION, Append, Batch, NewEvent
from tests.conftest import Cli

JUNCTION = shutil.which("junction", path=str(Path(sys.executable).parent))
runner = CliRunner()


def junction(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``junction`` script (from a scratch directory, so ``var/`` is never touched)."""
    assert JUNCTION is not None, "the junction entry point is not installed next to this Python"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([JUNCTION, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env,
                          check=False)


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit code 1, an ``error:`` message on stderr naming ``fragments``, and no traceback."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    text = " ".join(result.stderr.split())  # fragments may be wrapped across lines
    for fragment in fragments:
        assert fragment in text, (fragment, result.stderr)


def one_line(result: subprocess.CompletedProcess[str]) -> bool:
    return len(result.stderr.strip().splitlines()) == 1


# -- help -------------------------------------------------------------------------------------
def command_paths() -> list[list[str]]:
    """Every command and sub-command of the app, as argument paths ([] is the app itself)."""
    paths: list[list[str]] = [[]]

    def walk(command: Any, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():  # a group
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


PATHS = command_paths()


def test_the_command_tree_is_complete() -> None:
    names = {" ".join(p) for p in PATHS}
    assert {"run", "status", "replay", "bench", "events", "events tail", "dlq", "dlq list", "dlq retry",
            "dlq drop"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "junction")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if path:
        assert path[-1] in result.output
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    summary = (command.help or "").split()[:3]
    assert summary, f"{' '.join(path)} has no help text"
    assert " ".join(summary) in " ".join(result.output.split())


def test_entry_point_help(tmp_path: Path) -> None:
    result = junction("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    for command in ("run", "status", "replay", "bench", "events", "dlq"):
        assert command in result.stdout


# -- errors: one line, exit 1, no traceback ---------------------------------------------------
def test_run_unknown_system(tmp_path: Path) -> None:
    result = junction("run", "nope", cwd=tmp_path)
    assert_clean_error(result, "error: unknown system 'nope'", "known:", "ebike")
    assert one_line(result)
    assert not (tmp_path / "var").exists()


def test_bench_unknown_scenario(cli: Cli) -> None:
    result = cli("bench", "nope")
    assert_clean_error(result, "unknown benchmark 'nope'", "append")
    assert one_line(result)


@pytest.mark.parametrize("name", ["[/nope]", "[bold]nope"])
def test_error_messages_are_printed_verbatim(cli: Cli, name: str) -> None:
    result = cli("run", name)
    assert_clean_error(result, f"unknown system '{name}'")


def test_usage_error_exits_2_without_traceback(cli: Cli) -> None:
    result = cli("replay", "ebike")  # --projection is required
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert "--projection" in result.stderr


@pytest.fixture(scope="module")
def missing_data_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    scratch = tmp_path_factory.mktemp("missing")
    directory = scratch / "nowhere" / "ebike-data-that-was-never-created"
    return directory, junction("status", "ebike", "--data-dir", str(directory), cwd=scratch)


def test_status_without_data(missing_data_dir: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    directory, result = missing_data_dir
    assert_clean_error(result, "no data for ebike", "junction run ebike")
    assert not directory.exists()  # asking for status creates nothing


def test_long_errors_stay_on_one_line(missing_data_dir: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = missing_data_dir
    assert len(result.stderr.strip()) > 80
    assert one_line(result), result.stderr


def test_status_on_an_empty_data_dir(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("status", "ebike", "--data-dir", str(empty))
    assert list(empty.iterdir()) == []  # status must not create stores
    assert_clean_error(result, "ebike")
    assert one_line(result)


def test_replay_unknown_projection(cli: Cli, tmp_path: Path) -> None:
    result = cli("replay", "ebike", "--projection", "nope", "--data-dir", str(tmp_path))
    assert_clean_error(result, "ebike has no projection 'nope'", "known:", "stations")
    assert list(tmp_path.iterdir()) == []  # checked before anything is opened


# -- dlq --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ebike_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory written by the ebike runtime, started and stopped in-process."""
    directory = tmp_path_factory.mktemp("ebike")

    async def run_briefly() -> None:
        runtime = Runtime(systems.load("ebike"), directory)
        await runtime.start()
        await asyncio.sleep(0.1)
        await runtime.stop()

    asyncio.run(run_briefly())
    assert (directory / "vehicles.db").exists()
    return directory


def test_dlq_list_without_parked_messages(ebike_data: Path, cli: Cli) -> None:
    result = cli("dlq", "list", "ebike", "--data-dir", str(ebike_data))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no parked messages"


@pytest.fixture
def parked_data(ebike_data: Path, tmp_path: Path) -> Path:
    """A copy of the ebike data with one event in the vehicles log, parked by ``handlers:rentals``."""
    data = tmp_path / "data"
    shutil.copytree(ebike_data, data)

    async def park() -> None:
        store = SqliteStore("vehicles", data / "vehicles.db")
        await store.open()
        try:
            event = NewEvent(id=Snowflake(1).next_int(), type="tests.cli.Poison", schema_version=1,
                             json='{"rentalId":"r-1"}', key="r-1", occurred_at=1_767_254_400.0)
            await store.commit(Batch(appends=[Append("rental-r-1", ANY_VERSION, [event])]))
            envelope = (await store.read_log())[-1]
            await store.commit(Batch(park=[("handlers:rentals", "r-1", envelope, "boom", 5)]))
        finally:
            await store.close()

    asyncio.run(park())
    return data


def test_dlq_list_retry_and_drop_a_parked_message(parked_data: Path, cli: Cli) -> None:
    data = str(parked_data)
    listed = cli("dlq", "list", "ebike", "--data-dir", data, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert len(rows) == 1
    assert rows[0].pop("position") >= 1
    assert rows[0] == {"service": "vehicles", "subscription": "handlers:rentals", "key": "r-1",
                       "event": "tests.cli.Poison", "error": "boom", "attempts": 5}
    table = cli("dlq", "list", "ebike", "--data-dir", data)
    assert table.returncode == 0, table.stderr
    assert "vehicles" in table.stdout
    assert "boom" in table.stdout
    assert "no parked messages" not in table.stdout

    retried = cli("dlq", "retry", "ebike", "vehicles", "handlers:rentals", "--data-dir", data)
    assert retried.returncode == 0, retried.stderr
    assert "1 message(s) will be retried" in retried.stdout
    nothing = cli("dlq", "retry", "ebike", "vehicles", "handlers:stations", "--data-dir", data)
    assert_clean_error(nothing, "nothing parked for vehicles/handlers:stations")
    dropped = cli("dlq", "drop", "ebike", "vehicles", "handlers:rentals", "r-1", "--data-dir", data)
    assert dropped.returncode == 0, dropped.stderr
    assert "dropped 1 message" in dropped.stdout
    assert cli("dlq", "list", "ebike", "--data-dir", data).stdout.strip() == "no parked messages"
    again = cli("dlq", "drop", "ebike", "vehicles", "handlers:rentals", "r-1", "--data-dir", data)
    assert_clean_error(again, "nothing parked for vehicles/handlers:rentals key r-1")


def test_events_tail_without_follow(parked_data: Path, cli: Cli) -> None:
    result = cli("events", "tail", "ebike", "--no-follow", "-s", "vehicles", "--data-dir", str(parked_data))
    assert result.returncode == 0, result.stderr
    assert "tests.cli.Poison" in result.stdout
    assert "rental-r-1" in result.stdout
    assert '{"rentalId":"r-1"}' in result.stdout
    unknown = cli("events", "tail", "ebike", "--no-follow", "-s", "nope", "--data-dir", str(parked_data))
    assert_clean_error(unknown, "ebike has no service 'nope'")


# -- bench ------------------------------------------------------------------------------------
def test_bench_append_quick_json(tmp_path: Path) -> None:
    result = junction("bench", "append", "--quick", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["benchmark"] == "append"
    rows = report["per_transaction"]
    assert set(rows) == {"1", "100"}
    for row in rows.values():
        assert set(row) == {"raw_events_per_s", "junction_events_per_s", "ratio"}
        assert row["raw_events_per_s"] > 0
        assert row["junction_events_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["junction_events_per_s"] / row["raw_events_per_s"], abs=0.01)
