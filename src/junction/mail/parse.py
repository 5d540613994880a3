"""A received mail as the Mailpit API shows it: addresses, subject, text and HTML bodies, a snippet."""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

SNIPPET_LENGTH = 250


@dataclass(frozen=True)
class ParsedMail:
    """What the sink keeps of a mail besides its raw bytes."""

    message_id: str | None
    summary: dict[str, Any]  # Mailpit's message summary fields, without ID, Created and Read
    text: str
    html: str


def _addresses(message: EmailMessage, header: str) -> list[dict[str, str]]:
    try:
        value = message[header]
        addresses = value.addresses if value is not None else ()
    except (AttributeError, IndexError, ValueError):  # a malformed header: shown as nobody rather than failing
        return []
    return [{"Name": a.display_name, "Address": a.addr_spec} for a in addresses]


def _body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: the bytes as well as they decode
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    # SMTP carries CRLF line ends; readers (and tests comparing bodies) expect the text as it was written
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def snippet(text: str, html: str) -> str:
    """The first words of the mail (the text body, else the HTML body's text), on one line."""
    source = text or html_lib.unescape(re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(style|script).*?</\1>", " ", html)))
    line = " ".join(source.split())
    return line if len(line) <= SNIPPET_LENGTH else line[:SNIPPET_LENGTH].rstrip() + "..."


def parse(raw: bytes, envelope_recipients: list[str]) -> ParsedMail:
    """Parse a mail as received over SMTP; envelope recipients missing from To and Cc are its Bcc."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage):  # policy.default always makes EmailMessage; this satisfies mypy
        raise TypeError("unexpected message class")
    senders = _addresses(message, "From")
    to, cc = _addresses(message, "To"), _addresses(message, "Cc")
    shown = {a["Address"].lower() for a in to + cc}
    bcc = [{"Name": "", "Address": r} for r in envelope_recipients if r.lower() not in shown]
    text, html = _body(message, "plain"), _body(message, "html")
    message_id = str(message["Message-ID"] or "").strip() or None
    try:
        sent = message["Date"].datetime.isoformat() if message["Date"] is not None else ""
    except (AttributeError, ValueError):
        sent = ""
    summary = {
        "MessageID": (message_id or "").strip("<>"),
        "From": senders[0] if senders else {"Name": "", "Address": ""},
        "To": to, "Cc": cc, "Bcc": bcc, "ReplyTo": _addresses(message, "Reply-To"),
        "Subject": str(message["Subject"] or ""), "Snippet": snippet(text, html), "Size": len(raw),
        "Attachments": sum(1 for _ in message.iter_attachments()), "Tags": [], "Date": sent,
    }
    return ParsedMail(message_id, summary, text, html)
