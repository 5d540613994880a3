"""The mail sender stops when cancelled, even when the SMTP client swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from junction.mail import MailRetry, MailSender, SmtpSettings


async def test_a_cancellation_swallowed_inside_a_delivery_still_stops_the_sender() -> None:
    none: Any = None
    sender = MailSender(none, none, "test/mail", "from@example.com", SmtpSettings(), MailRetry())

    async def swallowing() -> float:
        """What asyncio.wait_for does on Python 3.11 when a reply and a cancellation arrive together."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return 5.0

    sender.deliver = swallowing  # type: ignore[method-assign]
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
