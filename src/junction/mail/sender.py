"""The background sender: delivers a service's queued mails over SMTP, each marked sent only once
the server accepted it.

While the server cannot be reached the sender backs off exponentially (real time: it is about
infrastructure, not domain time), then keeps trying every ``slow_delay`` seconds: it never gives
up, and says so in the log and in its status (``junction status --json``, ``/metrics``). A mail the
server refuses is retried on its own backoff while the others go on. A crash between the server's
acceptance and the row being marked sends the mail again with the same Message-ID (see
``junction.mail.compose``), which the receiver de-duplicates.

A batch of due mails is dealt out to a few SMTP connections that send at the same time (``CONNECTIONS``):
each mail goes over exactly one of them, and only one batch is out at a time, so concurrency never sends
a mail twice; accepted mails are recorded as sent a few to a commit (``MARK_EVERY``), and always before the
connection's share ends, whether it ended well or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import aiosmtplib
import structlog
from sqlalchemy import Table, func, select

from junction.mail.compose import compose, flat
from junction.mail.settings import SmtpSettings
from junction.store import Batch, Lease, Store

log = structlog.get_logger()

# the server refused this one mail; the connection is still good for the others
REFUSED = (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPSenderRefused,
           aiosmtplib.SMTPDataError)
# nothing answered (as opposed to a server that answered but would not take mail: login, TLS, ...)
UNREACHABLE = (ConnectionError, TimeoutError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError)
CONNECTIONS = 4  # SMTP connections a sender delivers over at once: a round trip each per command hides the others'
MARK_EVERY = 25  # accepted mails recorded as sent per commit (a crash re-sends at most these, same Message-IDs)


@dataclass(frozen=True)
class MailRetry:
    """How the sender backs off while mail cannot be delivered."""

    first_delay: float = 0.1
    max_delay: float = 10.0
    slow_after: int = 10  # failed attempts after which a mail (or the server) counts as failing
    slow_delay: float = 30.0  # from then on, try this often, forever

    def delay(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts in a row."""
        if attempts >= self.slow_after:
            return self.slow_delay
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempts - 1)))


class StoreFailed(Exception):
    """The service's store failed while the sender recorded a delivery (not the mail server's fault)."""


def describe(error: BaseException) -> str:
    """One line for a delivery error."""
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


class MailSender:
    """Delivers one service store's outbox rows; ``notify`` wakes it when a row was committed."""

    def __init__(self, store: Store, table: Table, name: str, mail_from: str, settings: SmtpSettings,
                 retry: MailRetry, batch_size: int = 100, poll_interval: float = 5.0,
                 connections: int = CONNECTIONS) -> None:
        self.store = store
        self.table = table
        self.name = name  # service/mailer, for logs
        self.mail_from = mail_from
        self.settings = settings
        self.retry = retry
        self.batch_size = batch_size
        self.connections = max(1, connections)
        self.poll_interval = poll_interval  # a safety net: commits wake the sender at once
        self.sent = 0  # mails the server accepted since start
        self.failures = 0  # failed connections in a row
        self.down = False  # the last attempt could not reach (or talk to) the server
        self.unreachable = False  # ...because nothing answered: worth retrying as soon as something does
        self.last_error: str | None = None
        self.delivering = False
        self.leased = False  # this sender holds the mailer's lease (it is the one delivering)
        self.standing_by = False  # another replica of the service holds it
        self.standby_interval = 2.0  # seconds between tries of a standing-by sender (real time: infrastructure)
        self._wake = asyncio.Event()

    # -- waking --------------------------------------------------------------------------------
    def notify(self) -> None:
        """A mail was queued: deliver now (unless the server is down: the backoff stands)."""
        if not self.down:
            self._wake.set()

    def nudge(self) -> None:
        """Try now, whatever the backoff (the server was seen to be back)."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until cancelled. One sender per mailer delivers: replicas of a service take the store's lease
        ``mail:<service>/<mailer>`` and the others stand by, taking over when the holder stops or dies."""
        while True:
            lease = await self._lease()
            self.leased = True
            try:
                await self._deliver_while(lease)
            finally:
                self.leased = False
                await lease.release()

    async def _lease(self) -> Lease:
        """The mailer's lease on the service's store, waited for while another replica holds it."""
        while True:
            try:
                lease = await self.store.try_lease(f"mail:{self.name}")
            except Exception as error:  # the store is away: try again shortly, as for any other failure
                log.warning("mail sender lease not taken", sender=self.name, error=describe(error))
                lease = None
            if lease is not None:
                self.standing_by = False
                return lease
            self.standing_by = True
            await asyncio.sleep(self.standby_interval)

    async def _deliver_while(self, lease: Lease) -> None:
        """Deliver while the lease is held."""
        while lease.held():
            self._wake.clear()
            try:
                delay = await self.deliver()
            except Exception as error:  # the store failed (a database restarting): keep going, never die
                delay = 1.0
                log.warning("mail sender interrupted", sender=self.name, error=describe(error), retry_in=delay)
            # aiosmtplib awaits replies with asyncio.wait_for, which on Python 3.11 swallows a cancellation that
            # lands as the reply arrives: honour it here, or stopping the runtime would wait for this task forever
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()

    async def deliver(self) -> float:
        """Deliver the mails that are due; seconds until it is worth trying again (0: more are due now).

        The due rows are dealt out to up to ``connections`` SMTP connections that send at the same time (each
        row to one of them, so no mail goes twice); each connection marks the mails its server accepted, a few
        at a time in one commit and the rest before it returns, whatever ends it."""
        rows = await self._due(self.batch_size)
        if not rows:
            return await self._until_next()
        self.delivering = True
        try:
            share = -(-len(rows) // self.connections)  # ceil: consecutive rows per connection
            outcomes = await asyncio.gather(*(self._deliver_over_one(rows[i:i + share])
                                              for i in range(0, len(rows), share)), return_exceptions=True)
            for outcome in outcomes:  # the store's failure first: the loop logs it and comes back later
                if isinstance(outcome, StoreFailed):
                    raise outcome
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                    raise outcome  # a cancellation
            failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failed is not None:
                if not isinstance(failed, (OSError, TimeoutError, aiosmtplib.SMTPException)):
                    raise failed
                return self._server_failed(failed)
        finally:
            self.delivering = False
        if self.down:
            log.info("mail server reachable again", sender=self.name, after_attempts=self.failures)
        self.failures, self.down, self.unreachable = 0, False, False
        return 0.0 if len(rows) == self.batch_size else await self._until_next()

    async def _deliver_over_one(self, rows: list[Any]) -> None:
        """Send ``rows`` in turn over one connection; record each accepted one as sent (``MARK_EVERY`` a commit)."""
        accepted: list[str] = []
        try:
            async with self._client() as smtp:
                for row in rows:
                    try:
                        prepared = flat(row, self.mail_from)
                        if prepared is None:
                            refused, _ = await smtp.send_message(compose(row, self.mail_from))
                        else:
                            refused, _ = await smtp.sendmail(*prepared)
                    except REFUSED as error:
                        await self._recorded(self._refused(row, error))
                        continue
                    accepted.append(row["key"])
                    self.sent += 1
                    if refused:  # accepted for the others: a retry would duplicate their copies
                        log.warning("mail sent, some recipients refused", sender=self.name, key=row["key"],
                                    refused=sorted(refused))
                    if len(accepted) >= MARK_EVERY:
                        marked, accepted = accepted, []
                        await self._recorded(self._mark_sent(marked))
        finally:  # what the server accepted is recorded even when the connection failed afterwards
            if accepted:
                await self._recorded(self._mark_sent(accepted))

    def _server_failed(self, error: BaseException) -> float:
        """Count a failed connection (unreachable, or unwilling to talk); the delay before the next attempt."""
        self.failures += 1
        self.down, self.last_error = True, describe(error)
        self.unreachable = isinstance(error, UNREACHABLE) or (
            isinstance(error, OSError) and not isinstance(error, aiosmtplib.SMTPException))
        delay = self.retry.delay(self.failures)
        if self.failures < self.retry.slow_after:
            log.warning("mail server unreachable", sender=self.name, error=self.last_error, retry_in=delay)
        elif (self.failures - self.retry.slow_after) % 10 == 0:  # loud, but not at every slow retry
            log.error("mail server unreachable, still retrying", sender=self.name, error=self.last_error,
                      attempts=self.failures, retry_every=delay)
        return delay

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(hostname=s.host, port=s.port, timeout=s.timeout, local_hostname="localhost",
                               use_tls=s.tls == "TLS", start_tls=s.tls == "STARTTLS",
                               username=s.username, password=s.password)

    @staticmethod
    async def _recorded(write: Awaitable[None]) -> None:
        """Run a store write; its failure is the store's, not the mail server's (``StoreFailed``)."""
        try:
            await write
        except Exception as error:
            raise StoreFailed(describe(error)) from error

    async def _mark_sent(self, keys: list[str]) -> None:
        """Record that the server accepted these mails (only now: a crash before re-sends them)."""
        t = self.table
        await self.store.commit(Batch(statements=[
            t.update().where(t.c.key.in_(keys)).values(sent_at=time.time(), last_error=None)]))

    async def _refused(self, row: Any, error: BaseException) -> None:
        attempts = row["attempts"] + 1
        delay = self.retry.delay(attempts)
        self.last_error = describe(error)
        t = self.table
        await self.store.commit(Batch(statements=[t.update().where(t.c.key == row["key"]).values(
            attempts=attempts, next_attempt=time.time() + delay, last_error=self.last_error)]))
        level = log.error if attempts >= self.retry.slow_after else log.warning
        level("mail refused, will retry", sender=self.name, key=row["key"], error=self.last_error,
              attempts=attempts, retry_in=delay)

    # -- reading the outbox --------------------------------------------------------------------
    async def _due(self, limit: int) -> list[Any]:
        t = self.table
        return list(await self.store.fetch_all(
            select(t).where(t.c.sent_at.is_(None), t.c.next_attempt <= time.time())
            .order_by(t.c.queued_at, t.c.key).limit(limit)))

    async def _until_next(self) -> float:
        t = self.table
        soonest = await self.store.fetch_one(select(func.min(t.c.next_attempt).label("at"))
                                             .where(t.c.sent_at.is_(None)))
        if soonest is None or soonest["at"] is None:
            return self.poll_interval
        return min(self.poll_interval, max(0.001, soonest["at"] - time.time()))

    # -- for the runtime -----------------------------------------------------------------------
    async def idle(self) -> bool:
        """True when nothing can be delivered now: no mail is due, the server is down, or another replica of the
        service is the one delivering (``Runtime.settle``)."""
        if self.standing_by:
            return True
        if self.delivering or self._wake.is_set():
            return False
        if self.down:
            if self.unreachable and await self._server_reachable():
                self.nudge()  # back up: deliver now rather than at the end of the backoff
                return False
            return True  # unreachable, or answering but refusing (a login, TLS): only time can tell
        return not await self._due(1)

    async def _server_reachable(self) -> bool:
        """Whether the server accepts a TCP connection now (never cached: settle must not see a stale answer;
        a refused local connection costs microseconds)."""
        try:
            async with asyncio.timeout(1.0):
                _, writer = await asyncio.open_connection(self.settings.host, self.settings.port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def status(self) -> dict[str, Any]:
        """Pending and failing mails, the server's state and the last error (``junction status``, metrics)."""
        t = self.table
        row = await self.store.fetch_one(
            select(func.count().label("pending"),
                   func.count().filter(t.c.attempts > 0).label("refused"),
                   func.min(t.c.queued_at).label("oldest")).where(t.c.sent_at.is_(None)))
        return {"pending": row["pending"] if row else 0,  # queued, not yet accepted by the server
                "refused": row["refused"] if row else 0,  # of those, refused at least once by the server
                "sent": self.sent, "server_down": int(self.down), "connect_failures": self.failures,
                "failing": int(self.failures >= self.retry.slow_after),  # retrying slowly now
                "oldest_queued_at": row["oldest"] if row else None, "last_error": self.last_error,
                "server": f"{self.settings.host}:{self.settings.port}"}
