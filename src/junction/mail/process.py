"""A ``junction mail-sink`` in a process of its own, for benchmarks: a mail server is another process, and in
the measured one its parsing and storing of every mail would count as the system's own work."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from junction.kafka.broker import free_port


@contextlib.asynccontextmanager
async def mail_sink_process(directory: Path, timeout: float = 30.0) -> AsyncIterator[int]:
    """A mail sink process keeping its mails in ``directory``; its SMTP port once it accepts connections.
    Stopped afterwards."""
    smtp_port, http_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "junction", "mail-sink", "--smtp-port", str(smtp_port), "--http-port",
        str(http_port), "--data-dir", str(directory), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:  # waiting for a process to listen: nothing else to wait on
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", smtp_port)
            except OSError:
                if time.monotonic() > deadline or process.returncode is not None:
                    raise RuntimeError("the mail sink did not start") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            break
        yield smtp_port
    finally:
        process.terminate()
        await process.wait()
