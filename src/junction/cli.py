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

from junction import operations, systems
from junction.config import FILE_VARIABLE
from junction.config import load as load_config
from junction.errors import JunctionError
from junction.grpc import GrpcConfig
from junction.logs import configure as configure_logging
from junction.queues import QueueSources, has_queues
from junction.runtime import Runtime, System
from junction.server import clock_for, running_url, serve
from junction.server import run as run_server
from junction.store import Store
from junction.topology import Topology, clock_from_config

app = typer.Typer(no_args_is_help=True, add_completion=False, help="junction: event-driven microservices in Python.")
events_app = typer.Typer(no_args_is_help=True, help="Look at the events flowing through a system.")
dlq_app = typer.Typer(no_args_is_help=True, help="Parked messages: list, retry or drop them.")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")


@app.callback()
def options(
    config: Annotated[Path | None, typer.Option(
        "--config", help="A TOML config file (default: $JUNCTION_CONFIG, else ./junction.toml if present).")] = None,
) -> None:
    """junction: event-driven microservices in Python."""
    if config is not None:
        # The flag stands for the variable: every reader of the configuration, and the processes
        # `junction up` starts, then use this file.
        os.environ[FILE_VARIABLE] = str(config.resolve())
    configure_logging(load_config().get("log_level"))  # also checks the configuration before any command runs

# Pipes and files get wide lines: tables and one-line errors are not wrapped at 80 columns.
console = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 10_000)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where the system keeps its files (default: the "
                                                           "data_dir setting, var/<system>).")]


def table(*columns: str) -> Table:
    """A table whose cells wrap instead of being cut, so nothing is hidden in narrow terminals or pipes."""
    result = Table()
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


class CliError(Exception):
    """An error to print as one line."""


def data_dir_of(system: str, data_dir: Path | None) -> Path:
    """The data directory of a system: the flag, else the ``data_dir`` setting (default ``var/<system>``)."""
    return load_config().data_dir(system, data_dir)


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
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the port setting, else the system's own).")
                    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: the host setting, 127.0.0.1).")
                    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where to keep the SQLite files.")] = None,
    time_scale: Annotated[float | None, typer.Option("--time-scale", help="Platform time runs this many times "
                                                                            "faster (default: 1).")] = None,
) -> None:
    """Run a system embedded: every service in this process, one SQLite file each."""
    spec = systems.load(system)
    config = load_config()
    chosen: int = config.get("port", port) or spec.port
    host = str(config.get("host", host))
    time_scale = float(config.get("time_scale", time_scale))
    if time_scale <= 0:
        raise CliError("--time-scale must be positive")
    if not port_is_free(host, chosen):
        raise CliError(f"port {chosen} on {host} is in use (choose another with --port)")
    directory = data_dir_of(system, data_dir)
    console.print(f"[bold]{system}[/] on http://{host}:{chosen}  data: {directory}  time scale: {time_scale:g}")
    # Queue subscriptions on the embedded queue (deadlines dead-letter), as junction.topology wires them.
    queues = QueueSources() if has_queues(spec) else None
    runtime = Runtime(spec, directory, clock=clock_for(directory, time_scale), source_factory=queues,
                      grpc=GrpcConfig.from_config(spec.services, config, host))
    if queues is not None:
        queues.bind(runtime)

    async def start(runtime: Runtime) -> None:
        await runtime.start()
        for companion in spec.companions:  # e.g. the mail sink; one that cannot start is logged, the rest runs
            runtime.spawn(f"companion:{companion.name}", companion.serve(directory))

    with contextlib.suppress(KeyboardInterrupt):
        run_server(serve(runtime, host, chosen, start=start))


@app.command("serve")
def serve_part(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    service: Annotated[str, typer.Option("--service", help="The service this process hosts, or 'gateway'.")],
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the port setting).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: the host setting, 127.0.0.1).")
                    ] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Keys, clock origin, SQLite files.")] = None,
) -> None:
    """Run ONE service (or the gateway) of a system in this process, configured by JUNCTION_* variables or the
    config file."""
    spec = systems.load(system)
    if service != "gateway":
        spec.service(service)
    config = load_config()
    config.check_services([s.name for s in spec.services])
    chosen: int | None = config.get("port", port)
    if chosen is None:
        raise CliError("serve needs a port: --port, JUNCTION_PORT or port in the config file")
    directory = config.data_dir(system, data_dir)
    topology = Topology.from_config(config)
    only = [] if service == "gateway" else [service]
    runtime = topology.runtime(spec, directory, clock_from_config(config), only=only, edge=service == "gateway")
    with contextlib.suppress(KeyboardInterrupt):
        run_server(serve(runtime, str(config.get("host", host)), chosen, start=topology.start,
                         run_file=service == "gateway"))


@app.command()
def up(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    distributed: Annotated[bool, typer.Option("--distributed", help="PostgreSQL and Kafka, started for you.")] = False,
    port: Annotated[int | None, typer.Option(help="The gateway's port (default: the system's own).")] = None,
    first_service_port: Annotated[int, typer.Option(help="Services listen from this port up.")] = 5001,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the system keeps its files.")] = None,
    time_scale: Annotated[float | None, typer.Option("--time-scale", help="Platform time runs this many times "
                                                                            "faster (default: 1).")] = None,
) -> None:
    """Run a system as one process per service plus its gateway, under a supervisor that restarts them."""
    from junction.up import run_up

    scale = float(load_config().get("time_scale", time_scale))
    if scale <= 0:
        raise CliError("--time-scale must be positive")
    run_up(systems.load(system), data_dir_of(system, data_dir), port, first_service_port, scale, distributed,
           console)


@app.command()
def down(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the system keeps its files.")] = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete what `junction up` kept: the stores (the "
                                                        "PostgreSQL cluster, the SQLite files), Kafka's and "
                                                        "RabbitMQ's data, the logs.")] = False,
) -> None:
    """Stop what `junction up` started for this system."""
    from junction.supervisor import stop_running
    from junction.up import STATE_FILE, purge_data

    spec = systems.load(system)
    directory = data_dir_of(system, data_dir)
    if not stop_running(directory / STATE_FILE) and not purge:
        raise CliError(f"{system} is not running under `junction up` (no live supervisor)")
    if purge:
        purge_data(spec, directory)
        console.print(f"{system} stopped, its data in {directory} deleted")
        return
    console.print(f"{system} stopped")


# -- status ---------------------------------------------------------------------------------------
@app.command()
def status(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: DataDir | None = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show processes, each service's log head and relay lag, consumer lag, parked messages and timers."""
    spec = systems.load(system)
    deployment = operations.locate(spec, data_dir_of(system, data_dir), load_config())
    url = running_url(deployment.data_dir) if deployment.supervisor is None else None
    if url:  # `junction run`: the live runtime knows its consumers' positions best
        report = httpx.get(f"{url}/_junction/status", timeout=10).json()
        report |= {"topology": deployment.kind, "database": deployment.database, "kafka": None, "kafka_error": None,
                   "rabbitmq": None, "rabbitmq_error": None, "supervisor": None, "servers": {}, "processes": []}
        for service in report["services"].values():
            service["relay_lag"] = None
    else:
        report = asyncio.run(operations.status(deployment, clock_from_config(deployment.config)))
    report["running"] = url
    if as_json:
        console.print_json(json.dumps(report))
        return
    _print_status(report)


def _cell(value: Any, missing: str = "-") -> str:
    return missing if value is None else str(value)


def _print_status(report: dict[str, Any]) -> None:
    where = f"running at {report['running']}" if report["running"] else report["topology"]
    kafka = f"  kafka {report['kafka']}" if report["kafka"] else ""
    console.print(f"[bold]{escape(report['system'])}[/] {escape(where)}  data {escape(report['database'])}"
                  f"{escape(kafka)}  platform time {report['time']}", highlight=False)
    for error in (report["kafka_error"], report.get("rabbitmq_error")):
        if error:
            console.print(f"[yellow]consumer lag unknown:[/] {escape(error)}", highlight=False)
    if report["processes"]:
        grid = table("process", "state", "pid", "restarts", "last exit", "uptime (s)", "url")
        for row in report["processes"]:
            grid.add_row(row["name"], row["state"], _cell(row["pid"]), str(row["restarts"]), _cell(row["last_exit"]),
                         str(row["uptime"]), row["url"] or "")
        console.print(grid)
    services = table("service", "log head", "relay lag", "parked", "next timer")
    consumers = table("service", "subscription", "source", "via", "position", "lag", "dead-lettered")
    for name, service in report["services"].items():
        next_timer = service["next_timer"]
        when = datetime.fromtimestamp(next_timer, UTC).isoformat(timespec="seconds") if next_timer else "-"
        services.add_row(name, str(service["head"]), _cell(service["relay_lag"]), str(service["parked"]), when)
        for subscription, info in service["consumers"].items():
            consumers.add_row(name, subscription, info["source"], info["via"], _cell(info["position"], "?"),
                              _cell(info["lag"], "?"), _cell(info.get("dead_lettered")))
    console.print(services)
    console.print(consumers)


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
    names = service or [s.name for s in spec.services]
    unknown = set(names) - {s.name for s in spec.services}
    if unknown:
        raise CliError(f"{system} has no service {sorted(unknown)[0]!r}")
    deployment = operations.locate(spec, data_dir_of(system, data_dir), load_config())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(deployment, names, last, follow))


async def _tail(deployment: operations.Deployment, names: list[str], last: int, follow: bool) -> None:
    async with operations.open_stores(deployment, names) as stores:
        positions = {name: max(0, await store.head() - last) for name, store in stores.items()}
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


# -- replay ---------------------------------------------------------------------------------------
@app.command()
def replay(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    projection: Annotated[str, typer.Option("--projection", "-p", help="The read model to rebuild.")],
    data_dir: DataDir | None = None,
) -> None:
    """Rebuild a projection from the first event (online when the system runs, embedded or distributed)."""
    spec = systems.load(system)
    owners = spec.projections()
    if projection not in owners:
        known = ", ".join(sorted(owners))
        raise CliError(f"{system} has no projection {projection!r} (known: {known})")
    deployment = operations.locate(spec, data_dir_of(system, data_dir), load_config())
    url = _projection_host(deployment, owners[projection].name)
    with Progress(TextColumn(f"replaying {projection}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("replay", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        started = time.perf_counter()
        if url:
            with httpx.stream("POST", f"{url}/_junction/projections/{projection}/rebuild", timeout=None) as answer:
                if answer.status_code != 200:
                    raise CliError(f"the rebuild was refused: {answer.status_code} {answer.read().decode()}")
                for line in answer.iter_lines():
                    message = json.loads(line)
                    if "done" in message:
                        update(message["done"], message["total"])
        else:
            if deployment.config.database_url or deployment.was_distributed:
                raise CliError(f"{system} is not running: start it (`junction up {system} --distributed`) and "
                               "replay online, so its consumers rebuild from the topics")
            total = asyncio.run(_offline(spec, deployment.data_dir,
                                         lambda runtime: runtime.rebuild(projection, update)))
            update(total, total)
    console.print(f"{projection} rebuilt in {time.perf_counter() - started:.2f} s ({'online' if url else 'offline'})")


def _projection_host(deployment: operations.Deployment, service: str) -> str | None:
    """The root URL of the running process that hosts ``service`` (its own process under `junction up`, the
    system's under `junction run`), or None when nothing runs."""
    for child in deployment.processes:
        if child.get("name") == service and child.get("state") == "ready" and child.get("url"):
            parts = httpx.URL(str(child["url"]))
            return f"{parts.scheme}://{parts.host}:{parts.port}"
    return running_url(deployment.data_dir)


# -- dlq ------------------------------------------------------------------------------------------
def _on_store(system: str, service: str, data_dir: Path | None, action: Callable[[Store], Any]) -> Any:
    """``action`` on one service's store, wherever the deployment keeps it (None when it has none)."""
    spec = systems.load(system)
    spec.service(service)
    deployment = operations.locate(spec, data_dir_of(system, data_dir), load_config())

    async def run() -> Any:
        async with operations.open_stores(deployment, [service]) as stores:
            return await action(stores[service]) if service in stores else None

    return asyncio.run(run())


async def _all_parked(deployment: operations.Deployment) -> list[dict[str, Any]]:
    rows = []
    async with operations.open_stores(deployment) as stores:
        for name, store in stores.items():
            for parked in await store.parked():
                rows.append({"service": name, "subscription": parked.subscription, "key": parked.key,
                             "event": parked.envelope.type, "position": parked.envelope.position,
                             "error": parked.error or "(waiting behind the first)", "attempts": parked.attempts})
    return rows


@dlq_app.command("list")
def dlq_list(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    data_dir: DataDir | None = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List parked messages of every service: subscription, key, event, error."""
    deployment = operations.locate(systems.load(system), data_dir_of(system, data_dir), load_config())
    rows = asyncio.run(_all_parked(deployment))
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
    marked = _on_store(system, service, data_dir, lambda s: s.request_retry(subscription, key))
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
    dropped = _on_store(system, service, data_dir, lambda s: s.drop_parked(subscription, key))
    if not dropped:
        raise CliError(f"nothing parked for {service}/{subscription} key {key}")
    console.print(f"dropped 1 message of key {key}; the rest of that key will be delivered")


# -- logs -----------------------------------------------------------------------------------------
@app.command()
def logs(
    system: Annotated[str, typer.Argument(help="The system, e.g. ebike.")],
    names: Annotated[list[str] | None, typer.Argument(help="Processes (a service, gateway) or servers (postgres, "
                                                           "kafka); default: all of them.")] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Show this many past lines of each first.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print lines as written (JSON) instead of rendering them.")
                   ] = False,
    data_dir: DataDir | None = None,
) -> None:
    """Show the logs of what `junction up` runs: <data-dir>/logs/<process>.log, PostgreSQL's and Kafka's."""
    from junction.logview import LogView

    deployment = operations.locate(systems.load(system), data_dir_of(system, data_dir), load_config(),
                                   require_data=False)
    known = operations.log_files(deployment)
    if not known:
        raise CliError(f"no logs for {system} in {deployment.data_dir / 'logs'} (`junction up {system}` writes them)")
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise CliError(f"no log named {unknown[0]!r} for {system} (known: {', '.join(known)})")
    chosen = {n: known[n] for n in names} if names else known

    def current() -> dict[str, Path]:  # with no names given, follow processes whose logs appear later too
        return chosen if names else operations.log_files(deployment)

    view = LogView(console, raw=raw, prefixed=len(chosen) > 1 or not names)
    with contextlib.suppress(KeyboardInterrupt):
        view.show(chosen, lines)
        while follow:
            time.sleep(0.25)
            view.poll(current())


# -- mail sink ------------------------------------------------------------------------------------
@app.command("mail-sink")
def mail_sink(
    smtp_port: Annotated[int | None, typer.Option("--smtp-port", help="SMTP port (default: the smtp_port setting, "
                                                                       "1025).")] = None,
    http_port: Annotated[int | None, typer.Option("--http-port", help="Web page and JSON API port (default: the "
                                                                       "mail_sink_port setting, 8025).")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where mails are kept (default: the "
                                                                      "mail_sink_dir setting, var/mail).")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Run a development SMTP server that keeps every mail: a live web page and a Mailpit-compatible JSON API."""
    from junction.mail import MailSink

    sink = MailSink.from_config(load_config(), data_dir=data_dir, host=host, smtp_port=smtp_port,
                                http_port=http_port)

    async def run() -> None:
        async with sink:
            console.print(f"[bold]mail sink[/] SMTP on {sink.host}:{sink.smtp_port}  web and API on {sink.url}  "
                          f"data: {sink.data_dir}", highlight=False)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


# -- config ---------------------------------------------------------------------------------------
@app.command("config")
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show every setting: its environment variable, its value and where the value comes from."""
    config = load_config()
    rows = config.table()
    if as_json:
        console.print_json(json.dumps({"file": str(config.file) if config.file else None, "settings": rows}))
        return
    console.print(f"config file: {config.file or '(none: no --config, $JUNCTION_CONFIG or ./junction.toml)'}",
                  highlight=False)
    grid = table("key", "variable", "value", "from")
    for row in rows:
        grid.add_row(row["key"], row["variable"], _cell(row["value"]), row["origin"])
    console.print(grid)


# -- manifests ------------------------------------------------------------------------------------
@app.command()
def manifests(
    system: Annotated[str, typer.Argument(help="The system, e.g. shop.")],
    image: Annotated[str, typer.Option(help="The container image with junction and the systems.")] = "junction:latest",
    replicas: Annotated[list[str] | None, typer.Option("--replicas", help="SERVICE=N (repeatable; 'gateway' "
                                                                          "too); 1 otherwise.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of printing.")] = None,
) -> None:
    """Print the Kubernetes manifests of the distributed topology (a Deployment and a Service per process)."""
    from junction.kubernetes import Cluster, to_yaml
    from junction.kubernetes import manifests as make

    counts: dict[str, int] = {}
    for item in replicas or []:
        name, _, count = item.partition("=")
        if not count.isdigit() or int(count) < 1:
            raise CliError(f"--replicas {item!r}: expected SERVICE=N with N >= 1")
        counts[name] = int(count)
    try:
        text = to_yaml(make(systems.load(system), Cluster(image=image, replicas=counts)))
    except ValueError as error:
        raise CliError(str(error)) from None
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        console.print(f"{system}: manifests written to {out}")


# -- bench ----------------------------------------------------------------------------------------
@app.command()
def bench(
    scenario: Annotated[str, typer.Argument(help="append, or a system's scenario (balance, e2e, gateway, shop, "
                                                 "social, ...); an unknown name lists them all.")],
    as_json: Annotated[bool, typer.Option("--json", help="Also print one JSON object on the last line.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer iterations (smoke runs).")] = False,
    store: Annotated[str, typer.Option("--store", help="append: sqlite | postgres (JUNCTION_DATABASE_URL, "
                                                       "else the local cluster).")] = "sqlite",
    writers: Annotated[str | None, typer.Option("--writers", help="append --store postgres: concurrent writers "
                                                                  "to measure, e.g. 1,8,32.")] = None,
    distributed: Annotated[bool, typer.Option("--distributed", help="e2e: PostgreSQL stores and Kafka "
                                                                    "(JUNCTION_KAFKA_BOOTSTRAP, else a private "
                                                                    "broker).")] = False,
) -> None:
    """Measure a scenario and print its figures next to the raw baseline."""
    from junction import bench as benches

    known = benches.scenarios()
    runner = known.get(scenario)
    if runner is None:
        raise CliError(f"unknown benchmark {scenario!r} (known: {', '.join(sorted(known))})")
    if store not in ("sqlite", "postgres"):
        raise CliError(f"unknown store {store!r} (sqlite | postgres)")
    if (store != "sqlite" or writers is not None) and scenario != "append":
        raise CliError("--store and --writers apply to `bench append` only")
    if writers is not None and store != "postgres":
        raise CliError("--writers needs --store postgres")
    if distributed and scenario != "e2e":
        raise CliError("--distributed applies to `bench e2e` only")
    options = benches.BenchOptions(quick=quick, store=store, distributed=distributed,
                                   writers=_writer_counts(writers) if writers else benches.BenchOptions.writers)
    result: dict[str, Any] = asyncio.run(runner(console, options))
    if as_json:
        print(json.dumps(result, separators=(",", ":")))


def _writer_counts(text: str) -> tuple[int, ...]:
    """``1,8,32`` as (1, 8, 32); CliError unless every item is a positive integer."""
    try:
        counts = tuple(int(item) for item in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise CliError(f"--writers takes positive integers separated by commas, not {text!r}")
    return counts


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
