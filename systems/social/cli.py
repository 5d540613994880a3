"""``junction social ...``: social's own commands."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from social import generate as generators

commands = typer.Typer(no_args_is_help=True, help="social's own commands.")
console = Console()


@commands.command()
def generate(
    serial: Annotated[bool, typer.Option("--serial", help="15 users, then 300 random friendships.")] = False,
    parallel: Annotated[bool, typer.Option("--parallel", help="100 users at once, a chain, 500 random pairs.")] = False,
    base: Annotated[str, typer.Option(help="The edge to talk to.")] = "http://localhost:9000",
    seed: Annotated[int | None, typer.Option(help="Seed of the random pairs (repeatable runs).")] = None,
) -> None:
    """Fill a running social system like the reference's scripts (the six-user network unless --serial or
    --parallel), then print what they queried."""
    if serial and parallel:
        raise typer.BadParameter("choose --serial or --parallel, not both")
    rng = random.Random(seed)
    with Progress(TextColumn("{task.description:>20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bars:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        async def run() -> generators.Generated:
            async with httpx.AsyncClient(base_url=base, timeout=30.0) as http:
                if serial:
                    return await generators.serial(http, rng, progress=progress)
                if parallel:
                    return await generators.parallel(http, rng, progress=progress)
                return await generators.network(http, progress=progress)

        try:
            made = asyncio.run(run())
        except (httpx.HTTPError, RuntimeError) as error:
            console.print(f"[red]generation failed:[/red] {error}")
            raise typer.Exit(1) from None
    console.print(f"{len(made.users)} users, {len(made.friendships)} friendships "
                  f"({made.skipped} random pairs skipped: self, duplicate or refused)")
    console.print_json(json.dumps(made.queries))
