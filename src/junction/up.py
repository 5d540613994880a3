"""``junction up``: a system as one process per service plus its gateway, under a supervisor.

With ``--distributed`` it first starts (installing when missing) a local PostgreSQL cluster and a
Kafka broker on loopback (and a RabbitMQ node when the system declares it needs one); every
process then gets its database and the brokers through the same ``JUNCTION_*`` variables the
Kubernetes manifests use (see ``junction.topology``). Without it the
processes share SQLite files, which needs no server at all. ``junction down`` stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from junction.clock import ScaledClock
from junction.runtime import System
from junction.server import clock_for
from junction.supervisor import ProcessSpec, Supervisor

STATE_FILE = "junction-up.json"


def _table(system: System, rows: list[dict[str, Any]]) -> Table:
    grid = Table(title=f"{system.name}: one process per service (Ctrl-C or `junction down {system.name}` stops)")
    for column in ("process", "state", "pid", "restarts", "uptime (s)", "url"):
        grid.add_column(column)
    for row in rows:
        grid.add_row(row["name"], row["state"], str(row["pid"] or "-"), str(row["restarts"]), str(row["uptime"]),
                     row["url"] or "")
    return grid


def purge_data(system: System, data_dir: Path) -> None:
    """Delete what `junction up` keeps in ``data_dir`` (its PostgreSQL cluster wherever it lives, Kafka's and
    RabbitMQ's data, the SQLite stores, the logs and state files), and nothing else there."""
    import shutil

    from junction.infra.postgres import LocalPostgres

    LocalPostgres(home=(data_dir / "pg").resolve()).remove()
    for name in ("kafka", "rabbitmq", "logs", "mail"):
        shutil.rmtree(data_dir / name, ignore_errors=True)
    for service in system.services:
        for path in data_dir.glob(f"{service.name}.db*"):  # the file and its WAL companions
            path.unlink(missing_ok=True)
    (data_dir / STATE_FILE).unlink(missing_ok=True)


def process_specs(system: System, data_dir: Path, gateway_port: int, first_service_port: int,
                  env: dict[str, str]) -> list[ProcessSpec]:
    """The processes of a system: its services, then its gateway, all told where the others are."""
    ports = {service.name: first_service_port + i for i, service in enumerate(system.services)}
    peers = {f"JUNCTION_{name.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{port}/{name}"
             for name, port in ports.items()}
    shared = {**env, **peers, "JUNCTION_DATA_DIR": str(data_dir)}

    def command(service: str, port: int) -> list[str]:
        return [sys.executable, "-m", "junction", "serve", system.name, "--service", service, "--port", str(port),
                "--data-dir", str(data_dir)]

    specs = [ProcessSpec(name, command(name, port), shared, f"http://127.0.0.1:{port}/{name}",
                         f"http://127.0.0.1:{port}/health") for name, port in ports.items()]
    specs.append(ProcessSpec("gateway", command("gateway", gateway_port), shared, f"http://127.0.0.1:{gateway_port}/",
                             f"http://127.0.0.1:{gateway_port}/health"))
    specs.extend(ProcessSpec(c.name, [sys.executable, "-m", "junction", *c.command(data_dir)], shared)
                 for c in system.companions)  # e.g. the mail sink the services deliver to
    return specs


def start_rabbitmq(system: System, data_dir: Path, console: Console, env: dict[str, str],
                   stops: list[Callable[[], None]], servers: dict[str, dict[str, str]]) -> None:
    """Start a RabbitMQ node in the data directory when the system needs one (``System.brokers``); the
    processes get its URL in ``env``, ``stops`` gets its stop."""
    if "rabbitmq" not in system.brokers:
        return
    from junction.infra.rabbitmq import private_node

    with console.status("starting RabbitMQ (installing it first if needed)"):
        node = private_node((data_dir / "rabbitmq").resolve())
        env["JUNCTION_RABBITMQ_URL"] = node.start()
    stops.append(node.stop)
    servers["rabbitmq"] = {"address": node.url, "log": str(node.log_dir)}


def run_up(system: System, data_dir: Path, port: int | None, first_service_port: int, time_scale: float,
           distributed: bool, console: Console) -> None:
    """Start the servers (when distributed) and the processes; supervise until stopped."""
    env: dict[str, str] = {}
    clock = clock_for(data_dir, time_scale)
    if isinstance(clock, ScaledClock):
        env |= {"JUNCTION_TIME_SCALE": str(time_scale), "JUNCTION_CLOCK_ORIGIN": str(clock._origin_wall)}
    stops: list[Callable[[], None]] = []
    servers: dict[str, dict[str, str]] = {}  # for `junction status` and `junction logs`
    if distributed:
        from junction.infra.postgres import LocalPostgres
        from junction.kafka.broker import KafkaBroker, free_port

        # The servers live in the data directory: a fresh directory is a fresh deployment, and two
        # systems (or two copies of one) can be up at once on their own ports.
        with console.status("starting PostgreSQL (installing it first if needed)"):
            postgres = LocalPostgres(home=(data_dir / "pg").resolve())
            env["JUNCTION_DATABASE_URL"] = postgres.start()
        stops.append(postgres.stop)
        servers["postgres"] = {"address": env["JUNCTION_DATABASE_URL"], "log": str(postgres.log_file)}
        with console.status("starting Kafka (fetching the jars from Maven Central the first time)"):
            broker = KafkaBroker(home=(data_dir / "kafka").resolve(), port=free_port(), controller_port=free_port())
            broker.start()
        stops.append(broker.stop)
        env["JUNCTION_KAFKA_BOOTSTRAP"] = broker.bootstrap
        servers["kafka"] = {"address": broker.bootstrap, "log": str(broker.log_file)}
        start_rabbitmq(system, data_dir, console, env, stops, servers)
    specs = process_specs(system, data_dir.resolve(), port or system.port, first_service_port, env)
    with Live(_table(system, []), console=console, refresh_per_second=2) as live:
        # The state file tells the operator commands what runs here: the settings the processes got
        # (where their data is) and the servers' addresses and logs.
        info = {"system": system.name, "distributed": distributed, "settings": env, "servers": servers}
        supervisor = Supervisor(specs, data_dir / "logs", data_dir / STATE_FILE,
                                on_change=lambda rows: live.update(_table(system, rows)), info=info)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(supervisor.run())
        finally:
            for stop in reversed(stops):
                with contextlib.suppress(Exception):
                    stop()
    console.print(f"{system.name} stopped")
