"""The mail composed by formatting (``compose.flat``) and read without the parser (``parse._simple``) are
exactly what the standard library's ``email`` composes and parses, and anything else is left to it."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aiosmtplib.email import flatten_message

from junction.mail import parse as parsing
from junction.mail.compose import compose, flat

TEXTS = ["", "a", "a\n", "a\n\n", "\n", "Hello,\n\nyour account is ready.\n", "x" * 78, "tab\there\n", "dot\n.\n..\n",
         "From me\n", " lead\n", "  \n\n  x  \n"]
SUBJECTS = ["Welcome to the pipeline", "Hi", "a" * 60, 'a (b) "c" d: e;', "x y z"]
SENDERS = ["Pipeline <welcome@pipeline.example.com>", "welcome@x.com", "Mail From <a@b.co>", "a.b+c@sub.example.org"]
RECIPIENTS = [["a@example.com"], ["a@example.com", "b@example.org"], ["u-1@example.com"]]
# each of these needs the standard library: encoded words, quoting, folding, long or non-ASCII lines, HTML
LEFT_TO_EMAIL: list[dict[str, Any]] = [{"text": "héllo\n"}, {"text": "x" * 79}, {"text": "a\rb"}, {"subject": "Grüße"},
                                      {"subject": "=?utf-8?q?x?="}, {"subject": "x  y"}, {"subject": " x"},
                                      {"subject": "s" * 70}, {"html": "<p>hi</p>"}, {"recipients": '["ü@x.com"]'}]


def row(**values: Any) -> dict[str, Any]:
    return {"message_id": "<0123abcdef@mail.notification.junction>", "queued_at": 1764451200.25,
            "recipients": '["a@example.com"]', "subject": "Welcome", "text": "Hello\n", "html": None, **values}


@pytest.mark.parametrize(("text", "subject"), list(itertools.product(TEXTS, SUBJECTS)))
def test_flat_is_byte_for_byte_what_email_composes(text: str, subject: str) -> None:
    for sender, recipients in itertools.product(SENDERS, RECIPIENTS):
        mail = row(text=text, subject=subject, recipients=json.dumps(recipients))
        prepared = flat(mail, sender)
        assert prepared is not None
        envelope_from, to, data = prepared
        assert data == flatten_message(compose(mail, sender))
        assert to == recipients and envelope_from == sender.rpartition("<")[2].rstrip(">")

        for envelope in (recipients, [*recipients, "hidden@example.com"]):  # the second has a Bcc
            simple = parsing._simple(data, envelope)
            assert simple is not None
            assert simple == parsing.parse_with_email(data, envelope)


@pytest.mark.parametrize("values", LEFT_TO_EMAIL)
def test_anything_else_is_left_to_email(values: dict[str, Any]) -> None:
    mail = row(**values)
    assert flat(mail, SENDERS[0]) is None
    data = flatten_message(compose(mail, SENDERS[0]))  # the sink reads it as the parser does, whichever way
    assert parsing.parse(data, ["a@example.com"]) == parsing.parse_with_email(data, ["a@example.com"])
