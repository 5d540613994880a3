"""``junction pipeline ...``: the system's own commands (``System.commands``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from junction.config import load as load_config
from pipeline.keys import create_key, signer

app = typer.Typer(help="The pipeline's own commands.", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="The system's data directory (default: the "
                                                                 "data_dir setting, var/pipeline).")]


def _directory(data_dir: Path | None) -> Path:
    return load_config().data_dir("pipeline", data_dir)


@app.command("create-key")
def create_key_command(data_dir: DataDir = None) -> None:
    """Make an API key for the X-API-Key header and print it (shown this once: only its hash is kept)."""
    print(create_key(_directory(data_dir)))


@app.command("create-token")
def create_token(
    subject: Annotated[str, typer.Option(help="Who the token is for (its sub claim).")] = "pipeline-client",
    days: Annotated[float, typer.Option(help="How long it is valid.")] = 30.0,
    data_dir: DataDir = None,
) -> None:
    """Make a JWT for the Authorization: Bearer header and print it."""
    print(signer(_directory(data_dir), days).issue({"sub": subject}, time.time()))
