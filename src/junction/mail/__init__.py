"""The mail block: durable e-mail for services (``Mailer``) and a development SMTP sink (``MailSink``).

``Mailer.send`` queues a mail in the handler's unit of work; a background sender delivers it over
SMTP exactly once per key (``junction.mail.outbox``, ``junction.mail.sender``). ``MailSink`` is the
``junction mail-sink`` server: SMTP in, a Mailpit-compatible JSON API and a live web page out.
"""

from junction.mail.compose import message_id
from junction.mail.outbox import Mailer
from junction.mail.sender import MailRetry, MailSender
from junction.mail.settings import SmtpSettings
from junction.mail.sink import MailSink

__all__ = ["MailRetry", "MailSender", "MailSink", "Mailer", "SmtpSettings", "message_id"]
