"""``junction ebike ...``: ebike's own commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from junction.errors import JunctionError

if TYPE_CHECKING:
    from junction.runtime import StoreFactory

app = typer.Typer(no_args_is_help=True, help="ebike's own commands.")
console = Console()


async def register_admin(data_dir: Path, username: str, password: str,
                         stores: StoreFactory | None = None) -> dict[str, Any]:
    """Register an ADMIN through auth's contract, in-process, on the system's data directory, in auth's
    store: ``stores`` makes it, by default the configured topology's (PostgreSQL with ``JUNCTION_DATABASE_URL``,
    or the PostgreSQL of a `junction up --distributed` running on ``data_dir``)."""
    from ebike.system import build
    from junction.config import load
    from junction.operations import locate
    from junction.runtime import Runtime
    from junction.topology import Topology

    system = build()
    config = locate(system, data_dir, load(), require_data=False).config
    store_factory = stores or Topology.from_config(config).stores(system)
    runtime = Runtime(system, data_dir, only=["auth"], store_factory=store_factory)
    await runtime.open()
    try:
        response = await runtime.client("auth").post(
            "/register", json={"username": username, "password": password, "role": "ADMIN"})
        if response.status_code != 200:
            raise JunctionError(f"cannot create admin {username!r}: {response.json().get('error', response.text)}")
        user: dict[str, Any] = response.json()
        # auth opened a session for the new admin; nobody holds it, so revoke it
        await runtime.client("auth").post("/logout", headers={"X-Session-ID": user["sessionId"]})
        return user
    finally:
        await runtime.stop()


@app.command("create-admin")
def create_admin(
    username: Annotated[str, typer.Argument(help="The new admin's username.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="EBIKE_ADMIN_PASSWORD",
                                          help="At least 8 characters (prompted when not given).")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="The system's data directory.")] = None,
) -> None:
    """Create an admin (the command-line way to the first admin, or any later one)."""
    if len(password) < 8:
        raise JunctionError("the password must have at least 8 characters")
    from junction.config import load

    directory = load().data_dir("ebike", data_dir)
    user = asyncio.run(register_admin(directory, username, password))
    console.print(f"admin [bold]{user['username']}[/] created (id {user['id']}) in {directory}")
