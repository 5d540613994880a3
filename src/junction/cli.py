"""The ``junction`` command line (Typer + Rich).

Every command has ``--help``. Errors print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from junction import systems
from junction.errors import JunctionError
from junction.logs import configure as configure_logging
from junction.runtime import Runtime, System
from junction.server import clock_for, running_url, serve
from junction.sqlite import SqliteStore
from junction.topology import Topology, clock_from_env

app = typer.Typer(no_args_is_help=True, add_completion=False, help="junction: event-driven microservices in Python.")
events_app = typer.Typer(no_args_is_help=True, help="Look at the events flowing through a system.")
dlq_app = typer.Typer(no_args_is_help=True, help="Parked messages: list, retry or drop them.")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
# Pipes and files get wide lines: tables and one-line errors are not wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 10_000)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where the system keeps its SQLite files.")]
DEFAULT_DATA = Path("var")


def table(*columns: str) -> Table:
    """A table whose cells wrap instead of being cut, so nothing is hidden in narrow terminals or pipes."""
    result = Table()
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


class CliError(Exception):
    """An error to print as one line."""


def data_dir_of(system: str, data_dir: Path | None) -> Path:
    """The data directory of a system: ``var/<system>`` unless given."""
    return data_dir if data_dir is not None else DEFAULT_DATA / system


def existing_data_dir(system: str, data_dir: Path | None) -> Path:
    """The data directory, which must hold at least one of the system's stores."""
    path = data_dir_of(system, data_dir)
    if not any((path / f"{service.name}.db").exists() for service in systems.load(system).services):
        raise CliError(f"no data for {system} in {path} (start it with `junction run {system}` first)")
    return path


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# -- run ------------------------------------------------------------------------------------------
@app.command()
def run(
    system: Annotated[str, typer.Argument(help="The system to run, e.g. ebike.")],
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the system's own).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where to keep the SQLite files.")] = None,
    time_scale: Annotated[float, typer.Option("--time-scale", help="Platform time runs this many times faster.")] = 1.0,
) -> None:
    """Run a system embedded: every service in this process, one SQLite file each."""
    spec = systems.load(system)
    chosen = port or spec.port
    if time_scale <= 0:
        raise CliError("--time-scale must be positive")
    if not port_is_free(host, chosen):
        raise CliError(f"port {chosen} on {host} is in use (choose another with --port)")
    directory = data_dir_of(system, data_dir)
    console.print(f"[bold]{system}[/] on http://{host}:{chosen}  data: {directory}  time scale: {time_scale:g}")
    runtime = Runtime(spec, directory, clock=clock_for(directory, time_scale))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(runtime, host, chosen))


@app.command("serve")
def serve_part(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    service: Annotated[str, typer.Option("--service", help="The service this process hosts, or 'gateway'.")],
    port: Annotated[int, typer.Option(help="HTTP port.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Keys, clock origin, SQLite files.")] = None,
) -> None:
    """Run ONE service (or the gateway) of a system in this process, configured by JUNCTION_* variables."""
    spec = systems.load(system)
    if service != "gateway":
        spec.service(service)
    directory = data_dir or Path(os.environ.get("JUNCTION_DATA_DIR", str(data_dir_of(system, None))))
    topology = Topology.from_env()
    only = [] if service == "gateway" else [service]
    runtime = topology.runtime(spec, directory, clock_from_env(), only=only, edge=service == "gateway")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(runtime, host, port, start=topology.start, run_file=service == "gateway"))


@app.command()
def up(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    distributed: Annotated[bool, typer.Option("--distributed", help="PostgreSQL and Kafka, started for you.")] = False,
    port: Annotated[int | None, typer.Option(help="The gateway's port (default: the system's own).")] = None,
    first_service_port: Annotated[int, typer.Option(help="Services listen from this port up.")] = 5001,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the system keeps its files.")] = None,
    time_scale: Annotated[float, typer.Option("--time-scale", help="Platform time runs this many times faster.")] = 1.0,
) -> None:
    """Run a system as one process per service plus its gateway, under a supervisor that restarts them."""
    from junction.up import run_up

    run_up(systems.load(system), data_dir_of(system, data_dir), port, first_service_port, time_scale, distributed,
           console)


@app.command()
def down(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the system keeps its files.")] = None,
) -> None:
    """Stop what `junction up` started for this system."""
    from junction.supervisor import stop_running
    from junction.up import STATE_FILE

    systems.load(system)
    if not stop_running(data_dir_of(system, data_dir) / STATE_FILE):
        raise CliError(f"{system} is not running under `junction up` (no live supervisor)")
    console.print(f"{system} stopped")


# -- status ---------------------------------------------------------------------------------------
@app.command()
def status(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: DataDir | None = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show each service's log head, consumer lag, parked messages and timers."""
    spec = systems.load(system)
    directory = existing_data_dir(system, data_dir)
    url = running_url(directory)
    if url:
        report = httpx.get(f"{url}/_junction/status", timeout=10).json()
    else:
        report = asyncio.run(_offline(spec, directory, lambda runtime: runtime.status()))
    report["running"] = url
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print(f"[bold]{system}[/] {'running at ' + url if url else 'not running'}  platform time {report['time']}")
    grid = table("service", "log head", "consumer", "position", "lag", "parked", "next timer")
    for name, service in report["services"].items():
        consumers = service["consumers"] or {"-": {"position": "", "lag": ""}}
        next_timer = service["next_timer"]
        when = datetime.fromtimestamp(next_timer, UTC).isoformat(timespec="seconds") if next_timer else "-"
        for index, (consumer, info) in enumerate(consumers.items()):
            first = index == 0
            grid.add_row(name if first else "", str(service["head"]) if first else "", consumer,
                          str(info["position"]), str(info["lag"]), str(service["parked"]) if first else "",
                          when if first else "")
    console.print(grid)


async def _offline(spec: System, directory: Path, action: Callable[[Runtime], Any]) -> Any:
    runtime = Runtime(spec, directory)
    await runtime.open()
    try:
        return await action(runtime)
    finally:
        await runtime.stop()


# -- events ---------------------------------------------------------------------------------------
@events_app.command("tail")
def events_tail(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    service: Annotated[list[str] | None, typer.Option("--service", "-s", help="Only these services.")] = None,
    last: Annotated[int, typer.Option("--last", "-n", help="Show this many past events per service first.")] = 10,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", "-f", help="Keep printing new events.")] = True,
    data_dir: DataDir | None = None,
) -> None:
    """Print the latest events of every service's log, then follow new ones."""
    spec = systems.load(system)
    directory = existing_data_dir(system, data_dir)
    names = service or [s.name for s in spec.services]
    unknown = set(names) - {s.name for s in spec.services}
    if unknown:
        raise CliError(f"{system} has no service {sorted(unknown)[0]!r}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(directory, names, last, follow))


async def _tail(directory: Path, names: list[str], last: int, follow: bool) -> None:
    stores = {n: SqliteStore(n, directory / f"{n}.db") for n in names if (directory / f"{n}.db").exists()}
    positions = {}
    for name, store in stores.items():
        await store.open()
        positions[name] = max(0, await store.head() - last)
    try:
        while True:
            for name, store in stores.items():
                for envelope in await store.read_log(positions[name], 500):
                    positions[name] = envelope.position
                    console.print(
                        f"[dim]{envelope.occurred_at.isoformat(timespec='milliseconds')}[/] [cyan]{name}[/]"
                        f"#{envelope.position} [bold]{envelope.type}[/] {envelope.stream} "
                        f"{json.dumps(envelope.data, separators=(',', ':'))}",
                        highlight=False, soft_wrap=True,
                    )
            if not follow:
                return
            await asyncio.sleep(0.2)
    finally:
        for store in stores.values():
            await store.close()


# -- replay ---------------------------------------------------------------------------------------
@app.command()
def replay(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    projection: Annotated[str, typer.Option("--projection", "-p", help="The read model to rebuild.")],
    data_dir: DataDir | None = None,
) -> None:
    """Rebuild a projection from the first event (online when the system runs)."""
    spec = systems.load(system)
    if projection not in spec.projections():
        known = ", ".join(sorted(spec.projections()))
        raise CliError(f"{system} has no projection {projection!r} (known: {known})")
    directory = existing_data_dir(system, data_dir)
    url = running_url(directory)
    with Progress(TextColumn(f"replaying {projection}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("replay", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        started = time.perf_counter()
        if url:
            with httpx.stream("POST", f"{url}/_junction/projections/{projection}/rebuild", timeout=None) as answer:
                for line in answer.iter_lines():
                    message = json.loads(line)
                    if "done" in message:
                        update(message["done"], message["total"])
        else:
            total = asyncio.run(_offline(spec, directory, lambda runtime: runtime.rebuild(projection, update)))
            update(total, total)
    console.print(f"{projection} rebuilt in {time.perf_counter() - started:.2f} s ({'online' if url else 'offline'})")


# -- dlq ------------------------------------------------------------------------------------------
def _service_store(system: str, service: str, data_dir: Path | None) -> tuple[System, SqliteStore]:
    spec = systems.load(system)
    spec.service(service)
    directory = existing_data_dir(system, data_dir)
    return spec, SqliteStore(service, directory / f"{service}.db")


async def _with_store(store: SqliteStore, action: Callable[[SqliteStore], Any]) -> Any:
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


@dlq_app.command("list")
def dlq_list(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: DataDir | None = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List parked messages of every service: subscription, key, event, error."""
    spec = systems.load(system)
    directory = existing_data_dir(system, data_dir)
    rows = []
    for service in spec.services:
        path = directory / f"{service.name}.db"
        if path.exists():
            for parked in asyncio.run(_with_store(SqliteStore(service.name, path), lambda s: s.parked())):
                rows.append({"service": service.name, "subscription": parked.subscription, "key": parked.key,
                             "event": parked.envelope.type, "position": parked.envelope.position,
                             "error": parked.error or "(waiting behind the first)", "attempts": parked.attempts})
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("no parked messages")
        return
    grid = table("service", "subscription", "key", "event", "position", "attempts", "error")
    for row in rows:
        columns = ("service", "subscription", "key", "event", "position", "attempts", "error")
        grid.add_row(*(str(row[c]) for c in columns))
    console.print(grid)


@dlq_app.command("retry")
def dlq_retry(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    service: Annotated[str, typer.Argument(help="The consuming service.")],
    subscription: Annotated[str, typer.Argument(help="The subscription (see `dlq list`).")],
    key: Annotated[str | None, typer.Option(help="Only this key (default: every parked key).")] = None,
    data_dir: DataDir | None = None,
) -> None:
    """Ask a subscription to deliver its parked messages again, in order."""
    _, store = _service_store(system, service, data_dir)
    marked = asyncio.run(_with_store(store, lambda s: s.request_retry(subscription, key)))
    if not marked:
        raise CliError(f"nothing parked for {service}/{subscription}{' key ' + key if key else ''}")
    console.print(f"{marked} message(s) will be retried by the running system (or at its next start)")


@dlq_app.command("drop")
def dlq_drop(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    service: Annotated[str, typer.Argument(help="The consuming service.")],
    subscription: Annotated[str, typer.Argument(help="The subscription (see `dlq list`).")],
    key: Annotated[str, typer.Argument(help="The parked key whose failing message to drop.")],
    data_dir: DataDir | None = None,
) -> None:
    """Drop the failing message of a parked key; the ones waiting behind it are delivered."""
    _, store = _service_store(system, service, data_dir)
    dropped = asyncio.run(_with_store(store, lambda s: s.drop_parked(subscription, key)))
    if not dropped:
        raise CliError(f"nothing parked for {service}/{subscription} key {key}")
    console.print(f"dropped 1 message of key {key}; the rest of that key will be delivered")


# -- bench ----------------------------------------------------------------------------------------
@app.command()
def bench(
    scenario: Annotated[str, typer.Argument(help="append | balance | e2e")],
    as_json: Annotated[bool, typer.Option("--json", help="Also print one JSON object on the last line.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations (smoke runs).")] = False,
) -> None:
    """Measure a scenario and print its figures next to the raw baseline."""
    from junction import bench as benches

    known = benches.scenarios()
    runner = known.get(scenario)
    if runner is None:
        raise CliError(f"unknown benchmark {scenario!r} (known: {', '.join(sorted(known))})")
    result: dict[str, Any] = asyncio.run(runner(console, quick))
    if as_json:
        print(json.dumps(result, separators=(",", ":")))


# -- systems' own commands -------------------------------------------------------------------------
def mount_system_commands(target: typer.Typer) -> None:
    """Mount each installed system's ``commands`` (a Typer app) as ``junction <system> ...``."""
    for name in systems.available():
        try:
            spec = systems.load(name)
        except Exception as failure:  # a broken system must not take the whole command line down
            err.print(f"[yellow]warning:[/] system {name} could not be loaded: {failure}", highlight=False)
            continue
        if spec.commands is not None:
            target.add_typer(spec.commands, name=name)


mount_system_commands(app)


def main() -> None:
    """Entry point: run the app, turning known errors into one line and exit code 1."""
    configure_logging()
    try:
        app(standalone_mode=False)
    except (CliError, JunctionError, LookupError, httpx.HTTPError, OSError) as failure:
        err.print(f"[red]error:[/] {escape(str(failure))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except Exception as failure:  # usage errors and the unexpected: still one line
        if hasattr(failure, "show") and hasattr(failure, "exit_code"):  # click's usage errors
            failure.show()
            sys.exit(failure.exit_code)
        err.print(f"[red]error:[/] {type(failure).__name__}: {escape(str(failure))}", highlight=False, soft_wrap=True)
        sys.exit(1)
