"""The e-mail outbox of a service: ``Mailer.send`` queues a row in the handler's unit of work.

    notification = Service("notification", worker=4)
    mailer = Mailer(notification, mail_from="shop@example.com")

    @notification.on("order", OrderPlaced)
    async def confirm(event: OrderPlaced, uow: UnitOfWork) -> None:
        mailer.send(uow, key=event.order_number, to=event.email, subject="...", text="...")

The row commits with the handler's inbox row or not at all, and its key is unique per mailer with
duplicates ignored, so a redelivered event queues nothing twice. A background sender (declared on
the service with ``Service.background``, so it runs wherever the service is hosted) delivers the rows
over SMTP and marks each one sent only after the server accepted it (``junction.mail.sender``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from junction.mail.compose import message_id
from junction.mail.sender import MailRetry, MailSender
from junction.mail.settings import SmtpSettings
from junction.service import Service
from junction.store import Store
from junction.uow import UnitOfWork


def outbox_table(service: Service, name: str) -> Table:
    """Declare the outbox table ``<name>_outbox`` on the service's store."""
    table_name = f"{name}_outbox"
    return service.table(
        table_name,
        Column("key", String, primary_key=True),  # unique per mailer: a second send with the key is ignored
        Column("message_id", String, nullable=False),
        Column("recipients", Text, nullable=False),  # a JSON list of addresses
        Column("subject", Text, nullable=False),
        Column("text", Text, nullable=False),
        Column("html", Text),
        Column("queued_at", Float, nullable=False),  # platform time; the mail's Date
        Column("attempts", Integer, nullable=False, default=0),  # rejections of this mail by the server
        Column("next_attempt", Float, nullable=False, default=0.0),  # wall-clock seconds
        Column("last_error", Text),
        Column("sent_at", Float),  # wall-clock seconds when the server accepted it; NULL while pending
        Index(f"{table_name}_pending", "sent_at", "next_attempt"),
    )


class Mailer:
    """Durable e-mail for one service: queue in a unit of work, delivered by a background sender."""

    def __init__(self, service: Service, mail_from: str | None = None, name: str = "mail",
                 settings: SmtpSettings | None = None, retry: MailRetry | None = None) -> None:
        self.service = service
        self.name = name
        self.mail_from = mail_from or f"{service.name}@localhost"
        self.settings = settings  # None: read from junction.config when the sender starts
        self.retry = retry or MailRetry()
        self.table = outbox_table(service, name)
        # one sender per running store (a test may run the same service definition several times)
        self._senders: WeakKeyDictionary[Store, MailSender] = WeakKeyDictionary()
        service.background(f"{name}-sender", idle=self._idle, status=self._status)(self._run)

    def send(self, uow: UnitOfWork, *, key: str | int, to: str | Sequence[str], subject: str, text: str,
             html: str | None = None) -> str:
        """Queue a mail in ``uow`` (sent once it commits; a key already queued is ignored); its Message-ID."""
        recipients = [to] if isinstance(to, str) else list(to)
        if not recipients:
            raise ValueError("a mail needs at least one recipient")
        mid = message_id(self.service.name, self.name, str(key))
        uow.upsert(self.table, {
            "key": str(key), "message_id": mid, "recipients": json.dumps(recipients), "subject": subject,
            "text": text, "html": html, "queued_at": uow.now().timestamp(), "attempts": 0, "next_attempt": 0.0,
        }, keys=["key"])
        store = uow.store

        async def wake() -> None:
            sender = self._senders.get(store)
            if sender is not None:
                sender.notify()

        uow.after_commit(wake)
        return mid

    def sender(self, service_runtime: Any) -> MailSender:
        """The sender of a running service (made on first use)."""
        store: Store = service_runtime.store
        sender = self._senders.get(store)
        if sender is None:
            settings = self.settings or SmtpSettings.from_config()
            sender = MailSender(store, self.table, f"{self.service.name}/{self.name}",
                                settings.mail_from or self.mail_from, settings, self.retry)
            self._senders[store] = sender
        return sender

    async def _run(self, service_runtime: Any) -> None:
        await self.sender(service_runtime).run()

    async def _idle(self, service_runtime: Any) -> bool:
        return await self.sender(service_runtime).idle()

    async def _status(self, service_runtime: Any) -> dict[str, Any]:
        return await self.sender(service_runtime).status()
