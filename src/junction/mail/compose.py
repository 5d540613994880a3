"""The mail a queued outbox row stands for, built the same way on every attempt.

The Message-ID is derived from the service, the mailer and the row's key, and the Date from when
the row was queued, so a mail sent again after a crash is the same mail: receivers that
de-duplicate by Message-ID (the mail sink, most real servers) keep one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any


def message_id(service: str, mailer: str, key: str) -> str:
    """The deterministic ``Message-ID`` of the mail ``key`` of a service's mailer."""
    digest = hashlib.sha256(f"{service}\0{mailer}\0{key}".encode()).hexdigest()[:32]
    domain = ".".join(re.sub(r"[^a-z0-9-]+", "-", part.lower()).strip("-") or "x" for part in (mailer, service))
    return f"<{digest}@{domain}.junction>"


def compose(row: Mapping[str, Any], mail_from: str) -> EmailMessage:
    """The e-mail of an outbox row (columns as ``junction.mail.outbox.outbox_table`` declares them)."""
    message = EmailMessage()
    message["Message-ID"] = row["message_id"]
    message["Date"] = format_datetime(datetime.fromtimestamp(row["queued_at"], UTC))
    message["From"] = mail_from
    message["To"] = ", ".join(json.loads(row["recipients"]))
    message["Subject"] = row["subject"]
    message.set_content(row["text"])
    if row["html"]:
        message.add_alternative(row["html"], subtype="html")
    return message
