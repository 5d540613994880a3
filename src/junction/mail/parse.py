"""A received mail as the Mailpit API shows it: addresses, subject, text and HTML bodies, a snippet.

The common mail (what ``junction.mail.compose.flat`` writes: simple headers, one plain ASCII text part) is
read by ``_simple`` without ``email``'s parser, giving exactly what the parser gives (the unit tests
compare both): the parser's header registry costs about a millisecond a mail, most of the sink's work.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
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


_ADDRESS = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
_MAILBOX = re.compile(rf"(?:([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) <({_ADDRESS})>|({_ADDRESS}))")
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+>")
_SUBJECT = re.compile(r"[!-~]+(?: [!-~]+)*")
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000")
_SIMPLE_HEADERS = ("Message-ID", "Date", "From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding",
                   "MIME-Version")
_SIMPLE_FIXED = {"Content-Type": 'text/plain; charset="utf-8"', "Content-Transfer-Encoding": "7bit",
                 "MIME-Version": "1.0"}


def _mailbox(text: str) -> dict[str, str] | None:
    match = _MAILBOX.fullmatch(text)
    if match is None:
        return None
    name, address, bare = match.groups()
    return {"Name": name, "Address": address} if address else {"Name": "", "Address": bare}


def _simple(raw: bytes, envelope_recipients: list[str]) -> ParsedMail | None:
    """The mail of ``compose.flat``'s shape read directly; None for any other (``parse`` then uses ``email``)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator or not raw.isascii():
        return None
    headers: dict[str, str] = {}
    for line in head.decode("ascii").split("\r\n"):
        name, colon, value = line.partition(": ")
        if not colon or name not in _SIMPLE_HEADERS or name in headers or not value or value != value.strip():
            return None
        headers[name] = value
    if len(headers) != len(_SIMPLE_HEADERS) or any(headers[k] != v for k, v in _SIMPLE_FIXED.items()):
        return None
    subject, message_id = headers["Subject"], headers["Message-ID"]
    if not (_SUBJECT.fullmatch(subject) and "=?" not in subject and _MESSAGE_ID.fullmatch(message_id)
            and _DATE.fullmatch(headers["Date"])):
        return None
    sender = _mailbox(headers["From"])
    to = [_mailbox(a) for a in headers["To"].split(", ")]
    if sender is None or any(a is None for a in to):
        return None
    text = body.decode("ascii")
    if "\r" in text.replace("\r\n", "") or any(ord(c) < 32 and c not in "\r\n\t" for c in text) or "\x7f" in text:
        return None
    text = text.replace("\r\n", "\n")
    shown_to = [a for a in to if a is not None]
    shown = {a["Address"].lower() for a in shown_to}
    bcc = [{"Name": "", "Address": r} for r in envelope_recipients if r.lower() not in shown]
    summary = {
        "MessageID": message_id.strip("<>"), "From": sender, "To": shown_to, "Cc": [], "Bcc": bcc, "ReplyTo": [],
        "Subject": subject, "Snippet": snippet(text, ""), "Size": len(raw), "Attachments": 0, "Tags": [],
        "Date": parsedate_to_datetime(headers["Date"]).isoformat(),
    }
    return ParsedMail(message_id, summary, text, "")


def parse(raw: bytes, envelope_recipients: list[str]) -> ParsedMail:
    """Parse a mail as received over SMTP; envelope recipients missing from To and Cc are its Bcc."""
    if (simple := _simple(raw, envelope_recipients)) is not None:
        return simple
    return parse_with_email(raw, envelope_recipients)


def parse_with_email(raw: bytes, envelope_recipients: list[str]) -> ParsedMail:
    """``parse`` by the standard library's parser, whatever the mail."""
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
