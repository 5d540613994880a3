"""apt_install drives apt-get as a server's install needs it (a fake apt-get on PATH records its calls)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from junction.infra.apt import apt_install


def fake_apt(directory: Path, exit_code: int) -> Path:
    """An apt-get that appends its arguments to ``calls`` and exits with ``exit_code``."""
    calls = directory / "calls"
    script = directory / "apt-get"
    script.write_text(f'#!/bin/sh\necho "$DEBIAN_FRONTEND $*" >> {calls}\necho "apt says no" >&2\nexit {exit_code}\n')
    script.chmod(0o755)
    return calls


@pytest.mark.skipif(os.geteuid() != 0, reason="as root apt-get runs without sudo")
def test_updates_then_installs_waiting_for_dpkgs_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_apt(tmp_path, 0)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert apt_install("some-server", RuntimeError, recommends=False) == []
    assert calls.read_text().splitlines() == [
        "noninteractive -o DPkg::Lock::Timeout=300 update -q",
        "noninteractive -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends some-server",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="as root apt-get runs without sudo")
def test_a_failing_apt_get_raises_the_callers_error_with_its_output(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    class ServerError(RuntimeError):
        pass

    fake_apt(tmp_path, 100)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    with pytest.raises(ServerError, match="update -q failed:\napt says no"):
        apt_install("some-server", ServerError)


def test_without_apt_get_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LookupError, match="no apt-get here: install some-server"):
        apt_install("some-server", LookupError)
