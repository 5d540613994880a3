"""A private PostgreSQL server on loopback for development, tests and CI, installed from Debian's packages.

``install`` puts PostgreSQL on the machine with ``apt-get`` when its binaries are missing (as root,
or through ``sudo -n``). ``start`` creates a cluster under ``home`` (``var/pg`` by default: data in
``home/data``, the server log in ``home/server.log``) the first time, then starts it on 127.0.0.1,
port 55432 by default, trusting local connections as the ``postgres`` user, and returns its DSN;
a running cluster is reused. ``stop`` shuts it down. Every step is idempotent and safe to run from
several processes at once (a lock file serialises them).

PostgreSQL refuses to run as root: when we are root, the cluster belongs to the ``postgres`` system
user and its commands run through ``runuser``. If that user cannot reach ``home`` (a checkout under
``/root``, say), the cluster lives under ``/var/tmp/junction-pg-<hash of home>`` instead, the same
place on every call.

``python -m junction.infra.postgres install|start|stop|status|dsn`` is the command-line face
(``scripts/postgres.sh`` calls it); ``start --export`` prints ``export JUNCTION_PG_DSN=...`` for
``eval``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from junction.errors import ConfigError
from junction.infra.apt import apt_install
from junction.infra.locks import file_lock

DEFAULT_PORT = 55432
DEFAULT_HOME = Path("var/pg")
SYSTEM_USER = "postgres"

SETTINGS = """# written by junction.infra.postgres on every start
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
max_connections = 300
shared_buffers = 128MB
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
"""


class PostgresError(RuntimeError):
    """PostgreSQL could not be installed, started or stopped; the message says why."""


def find_binaries() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres`` (the newest Debian version first)."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def install() -> Path:
    """The binaries' directory, installing the ``postgresql`` Debian package first when it is missing."""
    binaries = find_binaries()
    if binaries is not None:
        return binaries
    with file_lock(Path("/tmp/junction-postgres-install.lock")):
        binaries = find_binaries()
        if binaries is not None:
            return binaries
        apt_install("postgresql", PostgresError)
    binaries = find_binaries()
    if binaries is None:
        raise PostgresError("apt-get installed postgresql but no pg_ctl was found under /usr/lib/postgresql")
    return binaries


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class LocalPostgres:
    """One cluster whose data, settings and log live under ``home``."""

    home: Path = field(default_factory=lambda: DEFAULT_HOME.resolve())
    port: int = DEFAULT_PORT
    port_is_fixed: bool = False  # when False, a taken port is replaced by a free one

    def __post_init__(self) -> None:
        self.home = self.home.resolve()

    # -- where things are ------------------------------------------------------------------------
    @property
    def cluster_home(self) -> Path:
        """``home``, or its stand-in under /var/tmp when the postgres user cannot reach ``home``."""
        if _as_root() and not self._reachable_by_postgres(self.home):
            digest = hashlib.sha1(str(self.home).encode()).hexdigest()[:10]
            return Path(f"/var/tmp/junction-pg-{digest}")
        return self.home

    @property
    def data(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self.cluster_home / "data"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.cluster_home / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        """The DSN of ``database`` on the running cluster (its real port)."""
        return f"postgresql://{SYSTEM_USER}@127.0.0.1:{self.running_port() or self.port}/{database}"

    # -- state -----------------------------------------------------------------------------------
    def running_port(self) -> int | None:
        """The port of this cluster's live postmaster, if one runs."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port if _answers(port) else None

    def running(self) -> bool:
        """True when this cluster serves."""
        return self.running_port() is not None

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> str:
        """Install, initialise (once) and start the cluster; its DSN. Reuses a running one."""
        binaries = install()
        self._prepare_home()
        with file_lock(self.cluster_home / "start.lock"):
            if self.running():
                return self.dsn()
            if not (self.data / "PG_VERSION").exists():
                self._initdb(binaries)
            port = self.port
            if _answers(port):
                if self.port_is_fixed:
                    raise PostgresError(f"port {port} is taken by another process; choose another (--port)")
                port = _free_port()
            (self.data / "junction.conf").write_text(SETTINGS.format(port=port, sockets=self.data))
            self._chown(self.data / "junction.conf")
            if self.log_file.exists() and self.log_file.stat().st_size > 10_000_000:
                self.log_file.replace(self.cluster_home / "server.log.1")
            result = self._run(binaries / "pg_ctl", "-D", str(self.data), "-l", str(self.log_file), "-w",
                               "-t", str(int(timeout)), "start")
            if result.returncode != 0 or not self.running():
                raise PostgresError(f"PostgreSQL did not start:\n{result.stdout[-1000:]}{result.stderr[-1000:]}\n"
                                    f"{self._tail()}")
            return self.dsn()

    def stop(self) -> None:
        """Shut the cluster down (fast mode: open sessions are rolled back)."""
        binaries = find_binaries()
        if binaries is None or not (self.data / "postmaster.pid").exists():
            return
        result = self._run(binaries / "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if result.returncode != 0 and self.running():
            raise PostgresError(f"PostgreSQL did not stop:\n{result.stderr[-2000:]}")

    def remove(self) -> None:
        """Stop the cluster and delete it: its data, and its stand-in under /var/tmp if it has one."""
        self.stop()
        for path in {self.cluster_home, self.home}:
            shutil.rmtree(path, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------
    def _prepare_home(self) -> None:
        home = self.cluster_home
        home.mkdir(parents=True, exist_ok=True)
        if _as_root():
            shutil.chown(home, SYSTEM_USER, SYSTEM_USER)
            for path in home.iterdir():
                if path.name != "data":
                    shutil.chown(path, SYSTEM_USER, SYSTEM_USER)

    def _initdb(self, binaries: Path) -> None:
        result = self._run(binaries / "initdb", "-D", str(self.data), "-U", SYSTEM_USER, "--auth=trust",
                           "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")
        if result.returncode != 0:
            raise PostgresError(f"initdb failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        conf = self.data / "postgresql.conf"
        conf.write_text(conf.read_text() + "\ninclude_if_exists = 'junction.conf'\n")

    def _run(self, *command: str | Path) -> subprocess.CompletedProcess[str]:
        args = [str(c) for c in command]
        if _as_root():
            args = ["runuser", "-u", SYSTEM_USER, "--", *args]
        return subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                              cwd="/")

    def _chown(self, path: Path) -> None:
        if _as_root():
            shutil.chown(path, SYSTEM_USER, SYSTEM_USER)

    @staticmethod
    def _reachable_by_postgres(path: Path) -> bool:
        """True when the postgres user can traverse every existing parent of ``path``."""
        existing = path
        while not existing.exists():
            existing = existing.parent
        result = subprocess.run(["runuser", "-u", SYSTEM_USER, "--", "test", "-x", str(existing)],
                                capture_output=True, check=False)
        return result.returncode == 0

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def from_environment(home: Path | None = None, port: int | None = None) -> LocalPostgres:
    """The cluster named by ``--home``/``--port``, else ``pg_home``/``pg_port`` (``JUNCTION_PG_*``, config file)."""
    from junction.config import load

    config = load()
    return LocalPostgres(home=Path(config.get("pg_home", home)), port=config.get("pg_port", port),
                         port_is_fixed=config.origin("pg_port", port) != "default")


def main(argv: list[str] | None = None) -> int:
    """``install | start | stop | status | dsn`` for the cluster under ``--home``."""
    parser = argparse.ArgumentParser(prog="junction-postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "start", "stop", "status", "dsn"])
    parser.add_argument("--home", type=Path, default=None, help="cluster directory (default var/pg)")
    parser.add_argument("--port", type=int, default=None, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--export", action="store_true", help="print `export JUNCTION_PG_DSN=...`")
    parser.add_argument("--optional", action="store_true",
                        help="install: outside CI, only warn when PostgreSQL cannot be installed")
    args = parser.parse_args(argv)
    try:
        server = from_environment(args.home, args.port)
        if args.action == "install":
            print(install())
        elif args.action == "start":
            dsn = server.start()
            print(f"export JUNCTION_PG_DSN={dsn}" if args.export else dsn)
            print(f"postgresql serving on {dsn} (data {server.data}, log {server.log_file})", file=sys.stderr)
        elif args.action == "stop":
            server.stop()
            print("postgresql stopped", file=sys.stderr)
        elif args.action == "dsn":
            print(server.dsn())
        else:
            port = server.running_port()
            print(f"postgresql under {server.data}: " + (f"running on port {port}" if port else "stopped"))
            return 0 if port else 3
    except (PostgresError, ConfigError) as error:
        if args.action == "install" and args.optional and not in_ci():
            print(f"warning: {error}\n(the PostgreSQL tests will be skipped)", file=sys.stderr)
            return 0
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def in_ci() -> bool:
    """True in continuous integration (``CI`` set to true), where a missing server is a failure, not a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


if __name__ == "__main__":
    raise SystemExit(main())
