"""The mail a queued outbox row stands for, built the same way on every attempt.

The Message-ID is derived from the service, the mailer and the row's key, and the Date from when
the row was queued, so a mail sent again after a crash is the same mail: receivers that
de-duplicate by Message-ID (the mail sink, most real servers) keep one.

``flat`` gives the bytes to send for the common mail (plain ASCII text, simple addresses, a short
ASCII subject) by formatting them directly: byte for byte what ``email`` generates for ``compose``'s
message (the unit tests compare both), at a small fraction of its cost (``email``'s header registry
parses and refolds every header). Any other mail goes through ``compose``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
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


# What ``flat`` formats itself: anything else (encoded words, quoting, folding, non-ASCII) is left to ``email``.
_ADDRESS = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_SIMPLE_ADDRESS = re.compile(_ADDRESS)
_SIMPLE_MAILBOX = re.compile(rf"(?:[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <{_ADDRESS}>|{_ADDRESS})")
_SIMPLE_MESSAGE_ID = re.compile(r"<[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # but tab and newline (a carriage return included)
_SIMPLE_TEXT = re.compile(r"[ -~]+(?: [ -~]+)*")  # printable ASCII
MAX_LINE = 78  # email.policy.SMTP.max_line_length: longer header lines are folded, longer body lines encoded


def flat(row: Mapping[str, Any], mail_from: str) -> tuple[str, list[str], bytes] | None:
    """The envelope sender, the recipients and the message bytes of an outbox row, or None when the mail
    needs ``compose`` (HTML, non-ASCII, long lines, display names that need quoting)."""
    if row["html"]:
        return None
    recipients: list[str] = json.loads(row["recipients"])
    subject, text, mid = row["subject"], row["text"], row["message_id"]
    if not (recipients and _SIMPLE_MAILBOX.fullmatch(mail_from) and _SIMPLE_MESSAGE_ID.fullmatch(mid)
            and all(_SIMPLE_ADDRESS.fullmatch(r) for r in recipients)):
        return None
    to = ", ".join(recipients)
    if not (_SIMPLE_TEXT.fullmatch(subject) and subject == subject.strip() and "  " not in subject
            and "=?" not in subject):
        return None
    head = {"Message-ID": mid, "From": mail_from, "To": to, "Subject": subject}
    if any(len(name) + 2 + len(value) > MAX_LINE for name, value in head.items()):
        return None
    if not text.isascii() or _CONTROL.search(text):
        return None
    lines = text.split("\n")
    if lines[-1] == "" and len(lines) > 1:  # a final newline ends the last line (an empty text is one empty line)
        lines.pop()
    if any(len(line) > MAX_LINE for line in lines):
        return None
    date = format_datetime(datetime.fromtimestamp(row["queued_at"], UTC))
    body = "".join(line + "\r\n" for line in lines)
    message = (f"Message-ID: {mid}\r\nDate: {date}\r\nFrom: {mail_from}\r\nTo: {to}\r\n"
               f"Subject: {subject}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
               f"Content-Transfer-Encoding: 7bit\r\nMIME-Version: 1.0\r\n\r\n{body}")
    return _envelope_sender(mail_from), recipients, message.encode("ascii")


@functools.lru_cache(maxsize=64)
def _envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1]
