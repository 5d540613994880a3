"""``junction academy ...``: the academy's own commands."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from junction.errors import JunctionError

if TYPE_CHECKING:
    from junction.runtime import StoreFactory

app = typer.Typer(no_args_is_help=True, help="The academy's own commands.")
console = Console()


async def create_user(data_dir: Path, email: str, password: str, full_name: str, role: str,
                      stores: StoreFactory | None = None) -> dict[str, Any]:
    """Store an approved ADMIN or ANALYST through content's contract, in-process, in content's store: the
    configured topology's (PostgreSQL with ``JUNCTION_DATABASE_URL``, or that of a running `junction up`)."""
    from academy.contracts.api import Registration
    from academy.passwords import hash_password
    from academy.system import build
    from junction.config import load
    from junction.operations import locate
    from junction.runtime import Runtime
    from junction.topology import Topology

    try:
        fields = Registration(email=email, password=password, full_name=full_name, licence_number="-")
    except ValueError as invalid:
        raise JunctionError(f"invalid {role.lower()}: {invalid}") from None
    system = build()
    config = locate(system, data_dir, load(), require_data=False).config
    store_factory = stores or Topology.from_config(config).stores(system)
    runtime = Runtime(system, data_dir, only=["content"], store_factory=store_factory)
    await runtime.open()
    try:
        response = await runtime.client("content").post("/users", json={
            "email": fields.email, "passwordHash": hash_password(password), "fullName": fields.full_name,
            "licenceNumber": "-", "role": role, "status": "APPROVED"})
        if response.status_code != 201:
            raise JunctionError(f"cannot create {email!r}: {response.json().get('error', response.text)}")
        user: dict[str, Any] = response.json()
        return user
    finally:
        await runtime.stop()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Argument(help="The new admin's e-mail (their login).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="ACADEMY_ADMIN_PASSWORD",
                                          help="At least 8 characters (prompted when not given).")],
    full_name: Annotated[str, typer.Option("--name", help="Shown on the pages.")] = "Administrator",
    role: Annotated[str, typer.Option(help="ADMIN, or ANALYST for the analytics page.")] = "ADMIN",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="The system's data directory.")] = None,
) -> None:
    """Create an approved admin (the first one comes this way) or analyst."""
    if role not in ("ADMIN", "ANALYST"):
        raise JunctionError("the role is ADMIN or ANALYST")
    from junction.config import load

    directory = load().data_dir("academy", data_dir)
    user = asyncio.run(create_user(directory, email, password, full_name, role))
    console.print(f"[green]{role.lower()} {email} created[/green] (id {user['id']})")
