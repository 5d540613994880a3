"""A real mail sink for a system's tests: started on free ports and made the SMTP server of the systems the
test starts meanwhile (``JUNCTION_SMTP_PORT``), and what it received, read through its Mailpit-compatible API
as any client of it would. The root conftest's ``mail_sink`` fixture is one per test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.mail.sink import MailSink


@contextlib.asynccontextmanager
async def mail_sink_in(directory: Path, patch: pytest.MonkeyPatch) -> AsyncIterator[MailSink]:
    """A sink keeping its mails under ``directory/mail``, where the systems started meanwhile send theirs."""
    async with MailSink(directory / "mail", smtp_port=0, http_port=0) as sink:
        patch.setenv("JUNCTION_SMTP_PORT", str(sink.smtp_port))
        yield sink


async def received(sink: MailSink) -> list[dict[str, Any]]:
    """Every mail the sink holds, newest first, each as ``GET /api/v1/message/{ID}`` gives it (its text too)."""
    async with httpx.AsyncClient(base_url=sink.url) as api:
        listed = (await api.get("/api/v1/messages", params={"limit": 1_000_000})).json()["messages"]
        return [(await api.get(f"/api/v1/message/{m['ID']}")).json() for m in listed]
