"""Python stubs from the systems' ``.proto`` files, generated at build time, never edited, never committed.

Why a build hook (``hatch_build.py`` at the project root runs ``generate``) rather than generation on
first import: the stubs exist before anything imports them, so imports stay ordinary and mypy sees
typed messages (``--pyi_out``); and nothing writes into the source tree of a running process. `uv
sync` builds the editable package and so runs the hook, in a fresh clone too; uv builds it again
when a ``.proto`` changes (``tool.uv.cache-keys`` in pyproject.toml). The outputs are .gitignored.

A system keeps its contracts in ``systems/<system>/contracts/*.proto``. protoc runs with ``systems/``
as the import root, so the generated service module imports its messages as
``<system>.contracts.<name>_pb2`` (not as a top-level module, the usual grpcio-tools trap).

This module needs the standard library only (and grpcio-tools when generating): the build hook
loads it by path, before junction is installed.
"""

from __future__ import annotations

from pathlib import Path

SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def protos(root: Path) -> list[Path]:
    """The ``.proto`` files of every system under project ``root``."""
    return sorted((root / "systems").glob("*/contracts/*.proto"))


def outputs(proto: Path) -> list[Path]:
    """The files protoc writes for ``proto`` (protoc turns a ``-`` of the file name into ``_``)."""
    stem = proto.stem.replace("-", "_")
    return [proto.with_name(stem + suffix) for suffix in SUFFIXES]


def generate(root: Path) -> list[Path]:
    """Generate the messages (with type stubs) and service stubs of every system; the files written."""
    import importlib.resources

    from grpc_tools import protoc

    systems = root / "systems"
    well_known = importlib.resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    written: list[Path] = []
    for proto in protos(root):
        status = protoc.main(["protoc", f"-I{systems}", f"-I{well_known}", f"--python_out={systems}",
                              f"--pyi_out={systems}", f"--grpc_python_out={systems}", str(proto)])
        if status != 0:
            raise RuntimeError(f"protoc failed on {proto} (exit {status})")
        written.extend(outputs(proto))
    return written
