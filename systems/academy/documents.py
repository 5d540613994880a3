"""The registration form: multipart/form-data parsed with the standard library, and the proof document
checked by what it contains (magic bytes), never by its file name or declared type."""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import HTTP

from academy.contracts.api import MAX_DOCUMENT

# The signatures of the accepted formats (ISO 32000 header, PNG signature, JPEG SOI + marker).
SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


class FormError(ValueError):
    """The form cannot be read (400)."""


@dataclass(frozen=True)
class Form:
    """A parsed multipart form: text fields and files (name → bytes)."""

    fields: dict[str, str]
    files: dict[str, bytes]


def media_type(content: bytes) -> str | None:
    """The media type ``content`` really is (PDF, PNG or JPEG), or None."""
    for signature, kind in SIGNATURES:
        if content.startswith(signature):
            return kind
    return None


def too_large(content: bytes) -> bool:
    """True over the 10 MB limit."""
    return len(content) > MAX_DOCUMENT


def parse_form(content_type: str, body: bytes) -> Form:
    """The fields and files of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise FormError("expected multipart/form-data")
    message = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body,
                                          policy=HTTP)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise FormError("malformed multipart body")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            files[name] = data
        else:
            fields[name] = data.decode("utf-8", errors="replace")
    return Form(fields, files)
