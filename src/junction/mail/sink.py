"""The mail sink: a development SMTP server (aiosmtpd) that keeps every mail it accepts.

    async with MailSink("var/mail", smtp_port=0, http_port=0) as sink:   # 0: any free port
        ...  # send to sink.smtp_port; read http://127.0.0.1:{sink.http_port}/api/v1/messages

SMTP and HTTP run on the caller's event loop (no threads), so tests, ``junction mail-sink`` and a
runtime that embeds the sink all use it the same way. A mail is stored (de-duplicated by
Message-ID, see ``junction.mail.mailbox``) before the server answers 250.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session

from junction.config import Config
from junction.config import load as load_config
from junction.mail.api import Feed, build_app
from junction.mail.mailbox import Mailbox
from junction.mail.parse import parse

log = structlog.get_logger()
FILE_NAME = "mail.db"


class _HostedServer(uvicorn.Server):
    """uvicorn that leaves signals to its host: the process may run other servers on the same loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _Handler:
    """aiosmtpd's handler: store the mail, then acknowledge it."""

    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            self.sink.accept(raw, [str(r) for r in envelope.rcpt_tos])
        except Exception:  # the store failed: the sender must keep the mail and try again
            log.exception("mail sink could not store a mail")
            return "451 Requested action aborted: could not store the message"
        return "250 Message accepted for delivery"


class MailSink:
    """A development SMTP server that stores mails durably and serves them over HTTP."""

    def __init__(self, data_dir: Path | str = "var/mail", host: str = "127.0.0.1", smtp_port: int = 1025,
                 http_port: int = 8025) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.smtp_port = smtp_port  # the bound ports once started (a requested 0 becomes a free port)
        self.http_port = http_port
        self.mailbox = Mailbox(self.data_dir / FILE_NAME)
        self.feed = Feed()
        self.received = 0  # mails received over SMTP since start, duplicates included
        self.duplicates = 0  # of those, dropped because their Message-ID was already stored
        self._smtp: asyncio.Server | None = None
        self._sessions: set[SMTP] = set()
        self._http: _HostedServer | None = None
        self._http_task: asyncio.Task[None] | None = None

    @classmethod
    def from_config(cls, config: Config | None = None, **overrides: Any) -> MailSink:
        """A sink where the settings say (``smtp_port``, ``mail_sink_port``, ``mail_sink_dir``); keyword
        arguments win."""
        config = config or load_config()
        chosen: dict[str, Any] = {"data_dir": config.get("mail_sink_dir"), "smtp_port": config.get("smtp_port"),
                                  "http_port": config.get("mail_sink_port")}
        chosen.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**chosen)

    @property
    def url(self) -> str:
        """Where the web page and the API answer."""
        return f"http://{self.host}:{self.http_port}"

    # -- receiving -----------------------------------------------------------------------------
    def accept(self, raw: bytes, recipients: list[str]) -> bool:
        """Store a received mail (what the SMTP handler calls); False when it was a duplicate."""
        self.received += 1
        summary = self.mailbox.add(parse(raw, recipients), raw)
        if summary is None:
            self.duplicates += 1
            return False
        self.feed.publish("new", summary)
        return True

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the mailbox, then listen for SMTP and HTTP."""
        self.mailbox.open()
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        try:
            self._smtp = await loop.create_server(self._session_factory(handler, loop), self.host, self.smtp_port)
            self.smtp_port = self._smtp.sockets[0].getsockname()[1]
            listener = socket.create_server((self.host, self.http_port), reuse_port=False)
            self.http_port = listener.getsockname()[1]
            config = uvicorn.Config(build_app(self.mailbox, self.feed), log_level="warning", lifespan="off",
                                    log_config=None, timeout_graceful_shutdown=1)
            self._http = _HostedServer(config)
            self._http_task = asyncio.create_task(self._http.serve(sockets=[listener]), name="mail-sink-http")
            while not self._http.started:
                if self._http_task.done():
                    await self._http_task  # raises what stopped it
                    raise RuntimeError("the mail sink's HTTP server stopped while starting")
                await asyncio.sleep(0.005)
        except BaseException:
            await self.stop()
            raise
        log.info("mail sink listening", smtp=f"{self.host}:{self.smtp_port}", http=self.url)

    def _session_factory(self, handler: _Handler, loop: asyncio.AbstractEventLoop) -> Callable[[], SMTP]:
        def make() -> SMTP:
            session = _TrackedSMTP(handler, self._sessions, hostname="localhost", enable_SMTPUTF8=True, loop=loop)
            self._sessions.add(session)
            return session

        return make

    async def stop(self) -> None:
        """Stop listening, drop open SMTP connections, end event streams, close the mailbox."""
        if self._smtp is not None:
            self._smtp.close()
            for session in list(self._sessions):  # a half-sent mail is not acknowledged: its sender retries
                if session.transport is not None:
                    session.transport.close()
            await self._smtp.wait_closed()
            self._smtp = None
        self.feed.close()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._http_task), timeout=3)
            if not self._http_task.done():
                self._http_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._http_task
            self._http = self._http_task = None
        self.mailbox.close()

    async def serve(self) -> None:
        """Run until cancelled (``Runtime.spawn("mail-sink", sink.serve())``)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> MailSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _TrackedSMTP(SMTP):
    """An SMTP session that leaves the sink's set of open sessions when its connection ends."""

    def __init__(self, handler: _Handler, sessions: set[SMTP], **options: Any) -> None:
        super().__init__(handler, **options)
        self._open_sessions = sessions

    def connection_lost(self, error: Exception | None) -> None:
        self._open_sessions.discard(self)
        super().connection_lost(error)
