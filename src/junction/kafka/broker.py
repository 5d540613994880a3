"""A real single-node Apache Kafka (KRaft, controller+broker) on loopback, run from Maven Central jars.

Kafka has no Debian package here, but Maven Central carries the broker itself (``kafka_2.13``:
``kafka.Kafka`` and ``kafka.tools.StorageTool``). ``install`` resolves those jars with Maven into a
cache shared by every run (``~/.cache/junction/kafka/<version>/lib``; ``JUNCTION_CACHE`` moves it),
``start`` formats the storage once and starts the node, waiting until it serves, and ``stop`` shuts it
down. Every step is idempotent. ``python -m junction.kafka.broker install|start|stop|status`` is the
command-line face (``scripts/kafka.sh`` calls it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from junction.infra.locks import file_lock

KAFKA_VERSION = "4.1.1"
LOG4J2_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"
STARTED = "Kafka Server started"  # what kafka.Kafka logs once it serves clients
JVM_OPTIONS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]

POM = """<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>junction.local</groupId><artifactId>kafka-broker-runtime</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <!-- Kafka's release tarball adds the logging backend; its POM does not -->
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-1.2-api</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""

SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
"""


class BrokerError(RuntimeError):
    """Kafka could not be installed, started or stopped; the message says why (with the log's tail)."""


def cache_root() -> Path:
    """Where downloads are kept across runs: the ``cache`` setting (``JUNCTION_CACHE``), else
    ``$XDG_CACHE_HOME/junction``."""
    from junction.config import load

    configured = load().get("cache")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "junction"


def install(version: str = KAFKA_VERSION, cache: Path | None = None) -> Path:
    """The directory of the broker's jars, resolved from Maven Central on first use (then cached)."""
    home = (cache or cache_root()) / "kafka" / version
    lib, done = home / "lib", home / "lib.complete"
    if done.exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / "install.lock"):
        if done.exists():  # another process installed it while we waited
            return lib
        if shutil.which("mvn") is None:
            raise BrokerError("Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven")
        work = Path(tempfile.mkdtemp(prefix="resolve-", dir=home))
        try:
            (work / "pom.xml").write_text(POM.format(kafka=version, log4j=LOG4J2_VERSION))
            command = ["mvn", "-B", "-q", "-f", str(work / "pom.xml"), DEPENDENCY_PLUGIN,
                       "-DincludeScope=runtime", f"-DoutputDirectory={work / 'lib'}"]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise BrokerError(f"resolving Kafka {version} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
            shutil.rmtree(lib, ignore_errors=True)
            (work / "lib").rename(lib)
            done.write_text(version + "\n")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return lib


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies (Linux), so a killed test run leaves no JVM."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class KafkaBroker:
    """One KRaft node whose config, data, log and pid file live under ``home``."""

    home: Path
    port: int = 59092
    controller_port: int = 59093
    version: str = KAFKA_VERSION
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)  # when started here

    @classmethod
    def at(cls, home: Path) -> KafkaBroker:
        """The broker an earlier ``start`` configured under ``home``, on the same ports (to stop or restart it)."""
        try:
            config = (home / "server.properties").read_text()
        except OSError as error:
            raise BrokerError(f"no Kafka broker was configured under {home}") from error
        ports = dict(re.findall(r"(PLAINTEXT|CONTROLLER)://[^,\s]+:(\d+)", config))
        if set(ports) != {"PLAINTEXT", "CONTROLLER"}:
            raise BrokerError(f"{home / 'server.properties'} names no PLAINTEXT and CONTROLLER listeners")
        return cls(home, int(ports["PLAINTEXT"]), int(ports["CONTROLLER"]))

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's console log."""
        return self.home / "broker.log"

    def pid(self) -> int | None:
        """The running broker's process id, if one runs from this home."""
        try:
            pid = int((self.home / "pid").read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def running(self) -> bool:
        """True when this home's broker process is alive and its port answers."""
        return self.pid() is not None and _answers(self.port)

    def start(self, timeout: float = 90.0, fresh: bool = False, attached: bool = False) -> None:
        """Install, format (once) and start the node; return when it serves. Reuses a running one.

        ``fresh`` stops a running broker and wipes its data first; ``attached`` ties the broker's
        life to this process (it is terminated when this process dies).
        """
        if fresh:
            self.stop()
            shutil.rmtree(self.home / "data", ignore_errors=True)
        elif self.running():
            return
        if self.pid() is None and _answers(self.port):
            raise BrokerError(f"port {self.port} is taken by another process; choose another (--port)")
        lib = install(self.version)
        self._configure()
        self._format(lib)
        if self.log_file.exists():
            self.log_file.replace(self.home / "broker.log.1")
        command = ["java", *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                   "-cp", f"{lib}/*", "kafka.Kafka", str(self.home / "server.properties")]
        preexec: Callable[[], None] | None = _die_with_parent if attached else None
        with self.log_file.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=not attached, preexec_fn=preexec)
        (self.home / "pid").write_text(f"{process.pid}\n")
        self._process = process
        self._wait_ready(process, timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Shut the node down (SIGTERM: a controlled shutdown; SIGKILL after ``timeout``)."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.pid() is not None:
                self._signal(pid, signal.SIGKILL)
                while self.pid() is not None:
                    time.sleep(0.05)
        if self._process is not None:
            self._process.wait()  # reap our child
            self._process = None
        with contextlib.suppress(FileNotFoundError):
            (self.home / "pid").unlink()

    def _signal(self, pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _configure(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "log4j2.properties").write_text(LOG4J2)
        (self.home / "server.properties").write_text(
            SERVER.format(port=self.port, controller_port=self.controller_port, data=self.home / "data"))

    def _format(self, lib: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        command = ["java", *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                   "-cp", f"{lib}/*", "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                   "-c", str(self.home / "server.properties"), "--ignore-formatted"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(f"Kafka exited with {process.returncode}:\n{self._tail()}")
            if STARTED in self.log_file.read_text(errors="replace") and _answers(self.port):
                return
            time.sleep(0.1)
        raise BrokerError(f"Kafka did not start within {timeout:.0f} s:\n{self._tail()}")

    def _tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _cluster_id() -> str:
    """A Kafka Uuid in its text form (URL-safe base64 of 16 bytes, no padding, not starting with '-')."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def main(argv: list[str] | None = None) -> int:
    """``install | start | stop | status`` for a broker under ``--home`` on ``--port``."""
    from junction.config import load
    from junction.errors import ConfigError

    parser = argparse.ArgumentParser(prog="junction-kafka", description=__doc__)
    parser.add_argument("action", choices=["install", "start", "stop", "status"])
    parser.add_argument("--home", type=Path, help="default: kafka_home (JUNCTION_KAFKA_HOME), var/kafka")
    parser.add_argument("--port", type=int, help="default: kafka_port (JUNCTION_KAFKA_PORT), 59092")
    parser.add_argument("--controller-port", type=int,
                        help="default: kafka_controller_port (JUNCTION_KAFKA_CONTROLLER_PORT), 59093")
    args = parser.parse_args(argv)
    try:
        config = load()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    broker = KafkaBroker(Path(config.get("kafka_home", args.home)).resolve(), config.get("kafka_port", args.port),
                         config.get("kafka_controller_port", args.controller_port))
    try:
        if args.action == "install":
            print(install())
        elif args.action == "start":
            broker.start()
            print(f"kafka {broker.version} serving on {broker.bootstrap} (pid {broker.pid()}, log {broker.log_file})")
        elif args.action == "stop":
            broker.stop()
            print("kafka stopped")
        else:
            print(f"kafka on {broker.bootstrap}: {'running' if broker.running() else 'stopped'}")
            return 0 if broker.running() else 3
    except BrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
