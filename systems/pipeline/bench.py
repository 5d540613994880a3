"""``junction bench pipeline``: the page's performance table as a claim check, on this machine.

The system runs as ``junction run`` runs it (embedded, SQLite; uvicorn over loopback) in a process of
its own, its welcome mails going to a ``junction mail-sink`` process; this process is the load
generator. Each scenario is an open, constant-arrival-rate load: request ``i`` is due at ``i / rate``
seconds and is sent then whether or not earlier ones were answered, over keep-alive connections.
Latency is counted from when a request was due (not when a free connection sent it), so a system
that falls behind shows it in its latency instead of slowing the load down (no coordinated omission).

* user: ``POST /users``, a new user each time, at the page's 2,500 requests/s, then at 1,000/s;
* processing: ``POST /ingest``, NDJSON batches of ``BATCH`` readings at 10,000 readings/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from junction.bench import percentile
from junction.kafka.broker import free_port
from pipeline.keys import create_key

BATCH = 100  # readings per POST /ingest
METRICS = 10  # distinct metric names in the load
PAGE = {"user": {"per_s": 2500, "mean_ms": 45.0, "p99_ms": 120.0},
        "processing": {"per_s": 10000, "mean_ms": 12.0, "p99_ms": 35.0}}
HOST = "127.0.0.1"
CONNECTIONS = 256  # at most, to the system


class Connection:
    """One keep-alive HTTP/1.1 connection: enough of the protocol for uvicorn's answers (Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to the system."""
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def request(self, head: bytes, body: bytes) -> int:
        """Send a request (``head`` up to its headers' end) and read the answer; its status."""
        self.writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed by the server")
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        """Drop the connection."""
        self.writer.close()


class Pool:
    """Keep-alive connections: a free one is reused, else another opened, up to ``size`` (then requests wait
    for one: a system that falls behind shows it in the latencies, counted from when requests were due)."""

    def __init__(self, port: int, size: int = CONNECTIONS) -> None:
        self.port = port
        self.idle: list[Connection] = []
        self.opened = 0
        self.slots = asyncio.Semaphore(size)

    async def request(self, head: bytes, body: bytes) -> int:
        """One request on a free connection; its status (599 when the connection failed)."""
        async with self.slots:
            return await self._request(head, body)

    async def _request(self, head: bytes, body: bytes) -> int:
        # a kept connection may have been closed by the server meanwhile (its keep-alive timeout): then once
        # more on a new one
        for reused in (bool(self.idle), False):
            if reused:
                connection = self.idle.pop()
            else:
                try:
                    connection = await Connection.open(self.port)
                except OSError:
                    return 599
                self.opened += 1
            try:
                status = await connection.request(head, body)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                continue
            self.idle.append(connection)
            return status
        return 599

    def close(self) -> None:
        """Close every idle connection."""
        for connection in self.idle:
            connection.close()
        self.idle.clear()


@dataclass
class Outcome:
    """What one scenario measured."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # answers other than the expected one, by status
    latencies: list[float] = field(default_factory=list)  # ms, from when each request was due
    elapsed: float = 0.0

    def figures(self, unit: int = 1) -> dict[str, Any]:
        """Achieved rate (per second, x ``unit`` per request), mean and p99 latency, errors."""
        mean = sum(self.latencies) / len(self.latencies) if self.latencies else 0.0
        return {"requests": self.sent, "ok": self.ok, "errors": self.errors, "error_statuses": self.statuses,
                "achieved_per_s": round(self.ok * unit / self.elapsed) if self.elapsed else 0,
                "requests_per_s": round(self.ok / self.elapsed, 1) if self.elapsed else 0,
                "mean_ms": round(mean, 2),
                "p99_ms": round(percentile(self.latencies, 0.99), 2) if self.latencies else 0.0}


async def constant_rate(pool: Pool, rate: float, seconds: float, make: Callable[[int], tuple[bytes, bytes]],
                        accepted: int) -> Outcome:
    """Requests ``make(i)`` due every ``1 / rate`` s for ``seconds``; an answer with status ``accepted`` is ok."""
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    total = max(1, int(rate * seconds))
    start = loop.time()

    async def one(index: int, due: float) -> None:
        head, body = make(index)
        status = await pool.request(head, body)
        outcome.latencies.append((loop.time() - due) * 1000)
        if status == accepted:
            outcome.ok += 1
        else:
            outcome.errors += 1
            outcome.statuses[status] = outcome.statuses.get(status, 0) + 1

    tasks = []
    for index in range(total):
        due = start + index / rate
        if (wait := due - loop.time()) > 0.001:  # asyncio sleeps no finer than about a millisecond
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
        outcome.sent += 1
    await asyncio.gather(*tasks)
    outcome.elapsed = loop.time() - start
    return outcome


async def drained(port: int, limit: float = 300.0) -> float:
    """Seconds until the system has caught up after a load: no consumer lag, no mail pending (its status)."""
    started = time.monotonic()
    connection = await Connection.open(port)
    try:
        while time.monotonic() - started < limit:
            connection.writer.write(f"GET /_junction/status HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            await connection.reader.readline()
            length = 0
            while (line := await connection.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            status = json.loads(await connection.reader.readexactly(length))
            services = status["services"].values()
            behind = sum(c["lag"] for s in services for c in s["consumers"].values())
            pending = sum(t.get("pending", 0) for s in services for t in s["background"].values())
            if behind == 0 and pending == 0:
                break
            await asyncio.sleep(0.25)
    finally:
        connection.close()
    return round(time.monotonic() - started, 1)


def request_head(method: str, path: str, key: str, content_type: str) -> bytes:
    """The request line and headers, but Content-Length."""
    return (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {key}\r\n"
            f"Content-Type: {content_type}\r\n").encode()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 where /proc cannot tell (not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


@contextlib.asynccontextmanager
async def process(*args: str, env: dict[str, str] | None = None, port: int) -> AsyncIterator[int]:
    """``python -m <args>`` as a process of its own, once ``port`` accepts connections (its pid); stopped
    afterwards."""
    child = await asyncio.create_subprocess_exec(sys.executable, "-m", *args, env={**os.environ, **(env or {})},
                                                 stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                if time.monotonic() > deadline or child.returncode is not None:
                    raise RuntimeError(f"{' '.join(args)} did not start") from None
                await asyncio.sleep(0.1)
                continue
            writer.close()
            break
        yield child.pid
    finally:
        if child.returncode is None:
            child.terminate()
        await child.wait()


async def run(console: Console, quick: bool) -> dict[str, Any]:
    """Both scenarios against one embedded pipeline served by uvicorn; the figures beside the page's."""
    seconds = 3.0 if quick else 10.0
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data, port, smtp, sink_http = Path(tmp) / "data", free_port(), free_port(), free_port()
        key = create_key(data)
        env = {"JUNCTION_SMTP_PORT": str(smtp)}
        async with process("junction", "mail-sink", "--smtp-port", str(smtp), "--http-port", str(sink_http),
                           "--data-dir", str(Path(tmp) / "mail"), port=smtp) as sink_pid, \
                process("pipeline.bench", str(data), str(port), env=env, port=port) as system_pid:
            # who used the 2 cores: the system, the mail sink and this load generator (it shares them)
            pids = {"system": system_pid, "mail_sink": sink_pid, "load": os.getpid()}
            pool = Pool(port)
            users = request_head("POST", "/users", key, "application/json")
            ingest = request_head("POST", "/ingest", key, "application/x-ndjson")
            run_id = os.urandom(3).hex()

            fresh = itertools.count()  # every user of every scenario is new

            def user(index: int) -> tuple[bytes, bytes]:
                name = f"u{run_id}-{next(fresh)}"
                return users, json.dumps({"username": name, "email": f"{name}@example.com"}).encode()

            def batch(index: int) -> tuple[bytes, bytes]:
                stamp = datetime.now(UTC).isoformat()
                lines = (json.dumps({"source": f"s{index % 7}", "metric": f"m{(index + n) % METRICS}",
                                     "value": (index * 31 + n * 7) % 1000 / 10, "timestamp": stamp})
                         for n in range(BATCH))
                return ingest, "\n".join(lines).encode()

            await constant_rate(pool, 200, 1.0, user, 201)  # warm up both paths
            await constant_rate(pool, 20, 1.0, batch, 202)
            await drained(port)
            pool.close()
            scenarios = [("user", "POST /users", 2500.0, user, 201, 1),
                         ("user", "POST /users (40 % of the page's rate)", 1000.0, user, 201, 1),
                         ("processing", f"POST /ingest ({BATCH} readings)", 10_000 / BATCH, batch, 202, BATCH)]
            for service, path, rate, make, accepted, unit in scenarios:
                console.print(f"{service}: {path} at {rate * unit:,.0f}/s for {seconds:g} s ...")
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                outcome = await constant_rate(pool, rate, seconds, make, accepted)
                during = {name: cpu_seconds(pid) for name, pid in pids.items()}
                # how long the consumers (welcome mails, aggregates, analytics) take to catch up, before the next
                caught_up = await drained(port)
                after = {name: cpu_seconds(pid) for name, pid in pids.items()}
                cpu = {"load_s": {n: round(during[n] - before[n], 2) for n in pids},
                       "catching_up_s": {n: round(after[n] - during[n], 2) for n in pids}}
                pool.close()  # the server closes connections idle for its keep-alive timeout meanwhile
                results.append({"service": service, "path": path, "target_per_s": round(rate * unit),
                                **outcome.figures(unit), "drained_s": caught_up, "cpu": cpu, "page": PAGE[service]})
            pool.close()
    table = Table("service", "load", "target/s", "achieved/s", "page /s", "mean ms", "page mean", "p99 ms",
                  "page p99", "errors", "caught up (s)", "CPU s system/sink/load")
    for r in results:
        page = r["page"]
        table.add_row(r["service"], r["path"], f"{r['target_per_s']:,}", f"{r['achieved_per_s']:,}",
                      f"{page['per_s']:,}", f"{r['mean_ms']:.1f}", f"{page['mean_ms']:g}", f"{r['p99_ms']:.1f}",
                      f"{page['p99_ms']:g}", str(r["errors"]), f"{r['drained_s']:g}",
                      "/".join(f"{v:g}" for v in r["cpu"]["load_s"].values()))
    console.print(table)
    console.print("Open constant-arrival-rate load over loopback keep-alive connections; latency from when each "
                  "request was due; 'caught up': seconds after the load until every consumer and the mail "
                  "sender were done; CPU s: seconds of CPU each process used during the load (system, mail sink, this "
                  "load generator) out of 2 x the load's duration. Embedded pipeline (SQLite) under uvicorn in its own "
                  "process; processing "
                  "figures per second are readings (requests x batch size). The page's hardware, tool and "
                  f"duration are unstated; this machine has {os.cpu_count()} cores shared by load and system.")
    return {"benchmark": "pipeline", "seconds": seconds, "batch": BATCH, "results": results}


def serve(data_dir: str, port: str) -> None:
    """The system as ``junction run`` serves it, without the companions (the mail sink runs apart)."""
    from junction.logs import configure
    from junction.runtime import Runtime
    from junction.server import run as run_server
    from junction.server import serve as serve_runtime
    from pipeline.system import build

    configure("WARNING")  # a log line per request would be measured as the system's
    runtime = Runtime(build(), Path(data_dir))
    with contextlib.suppress(KeyboardInterrupt):
        run_server(serve_runtime(runtime, HOST, int(port), run_file=False))


if __name__ == "__main__":
    serve(*sys.argv[1:3])
