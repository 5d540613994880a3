"""Fixtures of the platform tests (unit and integration): the ``junction`` command line run in-process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from junction.cli import main

Cli = Callable[..., subprocess.CompletedProcess[str]]  # runs junction's main() in-process


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Cli:
    """Run ``junction.cli.main`` in-process (what the entry point calls), as a CompletedProcess.

    Cheaper than a subprocess; the handful of subprocess tests in ``tests/unit/test_cli.py`` prove the script calls
    ``main``. It runs in ``tmp_path``, and ``--config`` (which sets ``JUNCTION_CONFIG``) is undone after.
    """
    monkeypatch.chdir(tmp_path)
    # setenv first so that monkeypatch records the variable and removes whatever ``--config`` sets
    # (a bare delenv of an absent variable records nothing, and the setting would leak into later tests)
    monkeypatch.setenv("JUNCTION_CONFIG", "")
    monkeypatch.delenv("JUNCTION_CONFIG")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["junction", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["junction", *args], code, out.out, out.err)

    return run
