"""Companions: development servers a system needs beside its services (the mail sink of one that sends mail)."""

from __future__ import annotations

import sys
from pathlib import Path

from junction.runtime import Companion, System
from junction.service import Service
from junction.up import process_specs


async def _serve(data_dir: Path) -> None:
    return None


def test_junction_up_supervises_each_companion_as_a_process(tmp_path: Path) -> None:
    sink = Companion("mail-sink", _serve, lambda data_dir: ["mail-sink", "--data-dir", str(data_dir / "mail")])
    system = System("toy", [Service("one", worker=1)], port=9100, companions=[sink])
    specs = {spec.name: spec for spec in process_specs(system, tmp_path, 9100, 5101, {"JUNCTION_X": "1"})}
    assert list(specs) == ["one", "gateway", "mail-sink"]
    assert specs["mail-sink"].argv == [sys.executable, "-m", "junction", "mail-sink", "--data-dir",
                                       str(tmp_path / "mail")]
    assert specs["mail-sink"].env["JUNCTION_X"] == "1"
