"""Build hook: the systems' gRPC stubs, generated from their .proto files (``src/junction/grpc/codegen.py``).

Runs for the wheel and the editable install (`uv sync`); the generated files are .gitignored, so
they are declared as artifacts to be shipped in a built wheel all the same.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class GrpcStubs(BuildHookInterface):  # type: ignore[type-arg]  # hatchling's generic config type
    """Run protoc (grpcio-tools) over ``systems/*/contracts/*.proto`` before the package is built."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Generate the stubs in place; ship them with the wheel."""
        root = Path(self.root)
        # loaded by path: junction itself is not installed (nor importable with its dependencies) here
        spec = importlib.util.spec_from_file_location("junction_codegen", root / "src/junction/grpc/codegen.py")
        if spec is None or spec.loader is None:
            raise RuntimeError("src/junction/grpc/codegen.py is missing")
        codegen = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(codegen)
        for path in codegen.generate(root):
            build_data["artifacts"].append(path.relative_to(root).as_posix())
