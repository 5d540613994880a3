"""The mail sender stops when cancelled, even when the SMTP client swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from junction.mail import MailRetry, MailSender, SmtpSettings
from junction.store import Lease


class Held(Lease):
    """A lease that stays held."""

    def held(self) -> bool:
        return True

    async def release(self) -> None:
        pass


class LeasingOnly:
    """All of a store the sender touches here: its lease."""

    async def try_lease(self, name: str) -> Lease:
        return Held()


async def test_a_cancellation_swallowed_inside_a_delivery_still_stops_the_sender() -> None:
    store: Any = LeasingOnly()
    none: Any = None
    sender = MailSender(store, none, "test/mail", "from@example.com", SmtpSettings(), MailRetry())
    delivered = asyncio.Event()

    async def swallowing() -> float:
        """What asyncio.wait_for does on Python 3.11 when a reply and a cancellation arrive together."""
        delivered.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return 5.0

    sender.deliver = swallowing  # type: ignore[method-assign]
    task = asyncio.create_task(sender.run())
    await asyncio.wait_for(delivered.wait(), 2)  # delivering (under the lease) when the cancellation comes
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
