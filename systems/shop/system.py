"""The shop system: its services, its edge, and how junction serves it."""

from __future__ import annotations

from pathlib import Path

from junction.runtime import Companion, System
from shop import benchmarks, gateway
from shop.services import inventory, notification, order


async def _serve_mail_sink(data_dir: Path) -> None:
    from junction.mail import MailSink

    await MailSink.from_config(data_dir=data_dir / "mail").serve()


# `junction run shop` receives the shop's mails itself: SMTP on smtp_port (1025), the web page and the
# Mailpit-compatible API on mail_sink_port (8025); `junction up` runs `junction mail-sink` beside the services.
MAIL_SINK = Companion("mail-sink", _serve_mail_sink, lambda data_dir: ["mail-sink", "--data-dir",
                                                                        str(data_dir / "mail")])


def build() -> System:
    """The shop system definition."""
    return System(
        name="shop",
        services=[inventory.service, order.service, notification.service],
        port=9000,
        gateway=gateway.routes,
        companions=[MAIL_SINK],
        benchmarks={"shop": benchmarks.shop},
        description="orders, inventory over gRPC, order events and e-mail (COMP41720 lab 4)",
    )
