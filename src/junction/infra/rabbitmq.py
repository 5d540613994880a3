"""A private RabbitMQ node on loopback for development, tests and CI, installed from Debian's packages.

``install`` puts ``rabbitmq-server`` on the machine with ``apt-get`` when it is missing (as root, or
through ``sudo -n``) and keeps Debian's own ``rabbitmq-server`` service from starting, now or at
boot: junction runs its nodes itself. ``start`` runs a node whose configuration, data (Mnesia and
message stores), logs and Erlang cookie all live under ``home`` (``var/rabbitmq`` by
default), listening on 127.0.0.1 only: AMQP on ``port`` (56720 by default), Erlang distribution on
``dist_port`` and a private ``epmd`` on ``epmd_port``, so several nodes (a developer's, a test
session's, a ``junction up``'s) live side by side. It returns once the node answers the AMQP
handshake. ``stop`` shuts it down (SIGTERM is RabbitMQ's graceful stop) with its ``epmd``.

``python -m junction.infra.rabbitmq install|start|stop|status|url`` is the command-line face
(``scripts/rabbitmq.sh`` calls it).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from junction.infra.apt import apt_install, quietly
from junction.infra.postgres import in_ci
from junction.kafka.broker import _die_with_parent, free_port

DEFAULT_HOME = Path("var/rabbitmq")
DEFAULT_PORT = 56720
DEFAULT_DIST_PORT = 56721
DEFAULT_EPMD_PORT = 56722
SCRIPTS = Path("/usr/lib/rabbitmq/bin")  # the real scripts; /usr/sbin's wrappers switch to the rabbitmq user
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"

# rabbitmq.conf (new-style): loopback only, a log file under home, no console noise.
CONFIG = """# written by junction.infra.rabbitmq on every start
listeners.tcp.1 = 127.0.0.1:{port}
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
"""


class RabbitError(RuntimeError):
    """RabbitMQ could not be installed, started or stopped; the message says why (with the log's tail)."""


def installed() -> bool:
    """True when the RabbitMQ server scripts are on this machine."""
    return (SCRIPTS / "rabbitmq-server").exists()


def install() -> Path:
    """The directory of the server scripts, installing the ``rabbitmq-server`` Debian package first when missing."""
    if installed():
        return SCRIPTS
    prefix = apt_install("rabbitmq-server", RabbitError, recommends=False, start_services=False)
    _disable_system_service(prefix)
    if not installed():
        raise RabbitError(f"apt-get installed rabbitmq-server but {SCRIPTS / 'rabbitmq-server'} is missing")
    return SCRIPTS


def _disable_system_service(prefix: list[str]) -> None:
    """Stop the Debian-managed node if something started it, and keep it from starting at boot."""
    if Path("/run/systemd/system").exists() and shutil.which("systemctl"):
        quietly(*prefix, "systemctl", "disable", "--now", "rabbitmq-server")
    elif Path("/etc/init.d/rabbitmq-server").exists():
        quietly(*prefix, "/etc/init.d/rabbitmq-server", "stop")
        if shutil.which("update-rc.d"):
            quietly(*prefix, "update-rc.d", "rabbitmq-server", "disable")
    # The package's scripts run Erlang tools, which leave an epmd on the default port; our nodes use
    # private ones. epmd refuses to die while any node is registered with it, so no one else's breaks.
    if shutil.which("epmd"):
        quietly(*prefix, "epmd", "-kill")


def _answers_amqp(port: int) -> bool:
    """True when something on 127.0.0.1:``port`` answers the AMQP 0-9-1 handshake (a Connection.Start frame)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as probe:
            probe.sendall(AMQP_HEADER)
            frame = probe.recv(7)
    except OSError:
        return False
    return len(frame) == 7 and frame[0] == 1 and frame[1:3] == b"\x00\x00"  # a method frame on channel 0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalRabbit:
    """One RabbitMQ node whose configuration, data and logs live under ``home``."""

    home: Path = field(default_factory=lambda: DEFAULT_HOME.resolve())
    port: int = DEFAULT_PORT
    dist_port: int = DEFAULT_DIST_PORT
    epmd_port: int = DEFAULT_EPMD_PORT
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)  # when started here

    def __post_init__(self) -> None:
        self.home = self.home.resolve()

    # -- where things are ------------------------------------------------------------------------
    @property
    def nodename(self) -> str:
        """The Erlang node name: unique per home, stable across restarts (Mnesia is bound to it)."""
        return f"junction-{hashlib.sha1(str(self.home).encode()).hexdigest()[:10]}@localhost"

    @property
    def url(self) -> str:
        """The AMQP URL clients connect to (the default ``guest`` user, which RabbitMQ allows on loopback)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def log_dir(self) -> Path:
        """RabbitMQ's own log (``<node>.log``) and the console output of the start script."""
        return self.home / "log"

    def environment(self) -> dict[str, str]:
        """The variables that make the RabbitMQ scripts (server, rabbitmqctl) use this node and nothing global."""
        return {
            **os.environ,
            "HOME": str(self.home),  # the Erlang cookie lives here, not in /var/lib/rabbitmq
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_dir),
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(self.home / "rabbitmq-env.conf"),  # never /etc/rabbitmq's
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_SCHEDULER_BIND_TYPE": "u",  # do not pin schedulers to cores others share
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    # -- state -----------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The node's Erlang VM process id, if one runs from this home (found by its ``-home`` argument)."""
        wanted = b"\0-home\0" + str(self.home).encode() + b"\0"
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    cmdline = (entry / "cmdline").read_bytes()
                    if b"beam" in cmdline.split(b"\0", 1)[0] and wanted in cmdline:
                        return int(entry.name)
        return None

    def running(self) -> bool:
        """True when this home's node is alive and answers AMQP."""
        return self.pid() is not None and _answers_amqp(self.port)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 90.0, fresh: bool = False, attached: bool = False) -> str:
        """Install (when missing) and start the node; its AMQP URL once it answers. Reuses a running one.

        ``fresh`` stops a running node and wipes its data first; ``attached`` ties the node's life
        to this process (it is stopped when this process dies).
        """
        if fresh:
            self.stop()
            shutil.rmtree(self.home / "mnesia", ignore_errors=True)
        elif self.running():
            return self.url
        install()
        for name, port in (("AMQP", self.port), ("distribution", self.dist_port)):
            if self.pid() is None and _listening(port):
                raise RabbitError(f"the {name} port {port} is taken by another process; choose another")
        self._configure()
        console = self.log_dir / "console.log"
        if console.exists():
            console.replace(self.log_dir / "console.log.1")
        preexec: Callable[[], None] | None = _die_with_parent if attached else None
        with console.open("wb") as out:
            # Run in the foreground: the script traps SIGTERM and stops the VM gracefully.
            process = subprocess.Popen([str(SCRIPTS / "rabbitmq-server")], env=self.environment(), cwd=self.home,
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=not attached, preexec_fn=preexec)
        self._process = process
        self._wait_ready(process, timeout)
        return self.url

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the node down (SIGTERM, SIGKILL after ``timeout``), then its private epmd."""
        pid = self.pid()
        if pid is not None:
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.pid() is not None:
                _signal(pid, signal.SIGKILL)
                while self.pid() is not None:
                    time.sleep(0.05)
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=timeout)  # the start script exits after the VM
            self._process = None
        if shutil.which("epmd"):  # started by the VM on our private port; nothing else uses it
            subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], capture_output=True, check=False,
                           env=self.environment(), stdin=subprocess.DEVNULL)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl`` against this node; its output (RabbitError when it fails)."""
        result = subprocess.run([str(SCRIPTS / "rabbitmqctl"), "-n", self.nodename, *args], env=self.environment(),
                                capture_output=True, text=True, timeout=timeout, check=False,
                                stdin=subprocess.DEVNULL, cwd=self.home)
        if result.returncode != 0:
            raise RabbitError(f"rabbitmqctl {' '.join(args)} failed:\n{result.stdout[-1000:]}{result.stderr[-1000:]}")
        return result.stdout

    # -- helpers ---------------------------------------------------------------------------------
    def _configure(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "rabbitmq.conf").write_text(CONFIG.format(port=self.port))
        (self.home / "enabled_plugins").write_text("[].\n")  # no management plugin: nothing listens but AMQP
        (self.home / "rabbitmq-env.conf").write_text("# junction: every setting comes from the environment\n")

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RabbitError(f"RabbitMQ exited with {process.returncode}:\n{self._tail()}")
            if _answers_amqp(self.port):
                return
            time.sleep(0.1)
        raise RabbitError(f"RabbitMQ did not start within {timeout:.0f} s:\n{self._tail()}")

    def _tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_dir / "console.log", self.log_dir / f"{self.nodename}.log"):
            with contextlib.suppress(OSError):
                parts.append("\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts) or "(no log)"


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def from_environment(home: Path | None = None, port: int | None = None) -> LocalRabbit:
    """The node named by arguments or ``JUNCTION_RABBITMQ_HOME``/``_PORT``/``_DIST_PORT``/``_EPMD_PORT``."""
    env = os.environ.get
    return LocalRabbit(
        home=home or Path(env("JUNCTION_RABBITMQ_HOME", str(DEFAULT_HOME))),
        port=port or int(env("JUNCTION_RABBITMQ_PORT", str(DEFAULT_PORT))),
        dist_port=int(env("JUNCTION_RABBITMQ_DIST_PORT", str(DEFAULT_DIST_PORT))),
        epmd_port=int(env("JUNCTION_RABBITMQ_EPMD_PORT", str(DEFAULT_EPMD_PORT))),
    )


def private_node(home: Path) -> LocalRabbit:
    """A node under ``home`` on three ports nothing listens on now (tests, ``junction up``)."""
    return LocalRabbit(home=home, port=free_port(), dist_port=free_port(), epmd_port=free_port())


def main(argv: list[str] | None = None) -> int:
    """``install | start | stop | status | url`` for the node under ``--home``."""
    parser = argparse.ArgumentParser(prog="junction-rabbitmq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["install", "start", "stop", "status", "url"])
    parser.add_argument("--home", type=Path, default=None, help=f"node directory (default {DEFAULT_HOME})")
    parser.add_argument("--port", type=int, default=None, help=f"AMQP port (default {DEFAULT_PORT})")
    parser.add_argument("--optional", action="store_true",
                        help="install: outside CI, only warn when RabbitMQ cannot be installed")
    args = parser.parse_args(argv)
    node = from_environment(args.home, args.port)
    try:
        if args.action == "install":
            print(install())
        elif args.action == "start":
            print(node.start())
            print(f"rabbitmq {node.nodename} serving on {node.url} (data {node.home}, logs {node.log_dir})",
                  file=sys.stderr)
        elif args.action == "stop":
            node.stop()
            print("rabbitmq stopped", file=sys.stderr)
        elif args.action == "url":
            print(node.url)
        else:
            running = node.running()
            print(f"rabbitmq under {node.home} on port {node.port}: {'running' if running else 'stopped'}")
            return 0 if running else 3
    except RabbitError as error:
        if args.action == "install" and args.optional and not in_ci():
            print(f"warning: {error}\n(the RabbitMQ tests will be skipped)", file=sys.stderr)
            return 0
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
