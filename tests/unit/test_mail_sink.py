"""The mail sink over real SMTP and HTTP: the Mailpit JSON API, de-duplication by Message-ID, durability,
the live event stream, and the ``junction mail-sink`` command with its web page (in Chromium)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from junction.mail import MailSink

CHROMIUM = os.environ.get("EBIKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def mail(subject: str, message_id: str | None = None, to: str = "Ann <ann@example.com>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Shop <shop@example.com>"
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(f"Dear Ann,\n{subject}.\n")
    message.add_alternative(f"<p>Dear Ann, <b>{subject}</b>.</p>", subtype="html")
    return message


async def send(port: int, message: EmailMessage, **options: object) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, local_hostname="localhost", **options)  # type: ignore[arg-type]


async def test_stores_mails_and_serves_them_as_mailpit_does(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, http_port=0) as sink, httpx.AsyncClient(base_url=sink.url) as http:
        await send(sink.smtp_port, mail("Order 1 confirmed", "<one@shop>"))
        await send(sink.smtp_port, mail("Order 2 confirmed", "<two@shop>"), recipients=["ann@example.com", "bo@x.org"])

        listing = (await http.get("/api/v1/messages")).json()
        assert listing["total"] == 2 and listing["unread"] == 2
        newest, oldest = listing["messages"]
        assert newest["Subject"] == "Order 2 confirmed" and oldest["Subject"] == "Order 1 confirmed"
        assert newest["From"] == {"Name": "Shop", "Address": "shop@example.com"}
        assert newest["To"] == [{"Name": "Ann", "Address": "ann@example.com"}]
        assert newest["Bcc"] == [{"Name": "", "Address": "bo@x.org"}]  # an envelope recipient not in the headers
        assert newest["Snippet"] == "Dear Ann, Order 2 confirmed."
        assert newest["Created"].endswith("Z") and newest["MessageID"] == "two@shop"
        assert set(newest) >= {"ID", "From", "To", "Subject", "Snippet", "Created"}

        detail = (await http.get(f"/api/v1/message/{oldest['ID']}")).json()
        assert {k: detail[k] for k in oldest if k != "Read"} == {k: oldest[k] for k in oldest if k != "Read"}
        assert detail["Text"] == "Dear Ann,\nOrder 1 confirmed.\n"
        assert detail["HTML"] == "<p>Dear Ann, <b>Order 1 confirmed</b>.</p>\n"
        assert (await http.get("/api/v1/messages")).json()["unread"] == 1  # reading marks read
        assert (await http.get("/api/v1/message/latest")).json()["ID"] == newest["ID"]
        assert b"Subject: Order 1 confirmed" in (await http.get(f"/api/v1/message/{oldest['ID']}/raw")).content
        assert (await http.get("/api/v1/message/nope")).status_code == 404
        assert (await http.get("/api/v1/messages", params={"limit": "x"})).status_code == 400
        assert "EventSource" in (await http.get("/")).text

        deleted = await http.request("DELETE", "/api/v1/messages", json={"IDs": [oldest["ID"]]})
        assert deleted.status_code == 200 and deleted.text == "ok"
        assert [m["ID"] for m in (await http.get("/api/v1/messages")).json()["messages"]] == [newest["ID"]]
        assert (await http.delete("/api/v1/messages")).status_code == 200
        assert (await http.get("/api/v1/messages")).json() == {**listing, "total": 0, "unread": 0, "count": 0,
                                                               "messages_count": 0, "messages": []}


async def test_a_resent_message_id_is_stored_once_even_across_a_restart(tmp_path: Path) -> None:
    async with MailSink(tmp_path, smtp_port=0, http_port=0) as sink:
        port = sink.smtp_port
        await send(port, mail("Order 7 confirmed", "<order-7@shop>"))
        await send(port, mail("Order 7 confirmed", "<order-7@shop>"))  # a sender's re-send after a crash
        await send(port, mail("No id"))
        await send(port, mail("No id"))  # without a Message-ID nothing can be told apart: both kept
        assert (sink.received, sink.duplicates) == (4, 1)
        assert sink.mailbox.listing()["total"] == 3

    async with MailSink(tmp_path, smtp_port=port, http_port=0) as again:  # durable: the same file, same port
        await send(port, mail("Order 7 confirmed", "<order-7@shop>"))
        assert again.duplicates == 1
        assert [m["Subject"] for m in again.mailbox.listing()["messages"]] == ["No id", "No id", "Order 7 confirmed"]


async def test_the_page_is_pushed_new_mails(tmp_path: Path) -> None:
    async with (MailSink(tmp_path, smtp_port=0, http_port=0) as sink, httpx.AsyncClient(base_url=sink.url) as http,
                http.stream("GET", "/api/events", timeout=5) as events):
        lines = events.aiter_lines()
        assert await anext(lines) == "retry: 1000"
        await send(sink.smtp_port, mail("Pushed", "<pushed@shop>"))
        async with asyncio.timeout(5):
            while await anext(lines) != "event: new":
                pass
            data = await anext(lines)
        assert '"Subject": "Pushed"' in data
    # leaving the block stopped the sink with a stream open: it ended the stream instead of hanging


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SinkProcess:
    """``junction mail-sink`` running in a subprocess."""

    smtp_port: int
    url: str
    data_dir: Path

    def send(self, message: EmailMessage) -> None:
        with smtplib.SMTP("127.0.0.1", self.smtp_port, local_hostname="localhost", timeout=10) as client:
            client.send_message(message)


@pytest.fixture(scope="module")
def sink_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkProcess]:
    """The command, started once for this module's tests; stopped with Ctrl-C (SIGINT) and checked."""
    smtp_port, http_port = free_port(), free_port()
    data_dir = tmp_path_factory.mktemp("sink") / "mail"
    process = subprocess.Popen(
        [sys.executable, "-m", "junction", "mail-sink", "--smtp-port", str(smtp_port), "--http-port", str(http_port),
         "--data-dir", str(data_dir)], env={**os.environ, "JUNCTION_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # waiting for a process to listen: nothing else to wait on
            assert process.poll() is None, process.communicate()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "junction mail-sink did not start in 30 s"
            time.sleep(0.05)
        yield SinkProcess(smtp_port, url, data_dir)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert process.returncode in (0, 130), err
    assert f"SMTP on 127.0.0.1:{smtp_port}" in out.decode() and (data_dir / "mail.db").exists()


def test_junction_mail_sink_command(sink_process: SinkProcess) -> None:
    sink_process.send(mail("Via the command", "<cli@shop>"))
    listing = httpx.get(f"{sink_process.url}/api/v1/messages").json()
    assert "Via the command" in [m["Subject"] for m in listing["messages"]]


@pytest.mark.browser
def test_the_web_page_shows_new_mails_live_and_opens_them(sink_process: SinkProcess) -> None:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (`make browser` adds Debian's chromium)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(sink_process.url)
            page.wait_for_selector("#state:has-text('live')")
            sink_process.send(mail("Arrives while watching", "<live@shop>"))
            row = page.locator("#list li", has_text="Arrives while watching")
            row.wait_for(timeout=5000)  # pushed over the event stream: the page was not reloaded
            assert page.locator("#list li").first.locator(".subject").inner_text() == "Arrives while watching"
            assert row.count() == 1
            row.click()
            page.locator("#reader pre", has_text="Dear Ann,").wait_for(timeout=5000)
            assert "Arrives while watching" in page.locator("#reader dl").inner_text()
        finally:
            browser.close()
