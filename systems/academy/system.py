"""The academy system: its nine services, its edge, and how junction serves it."""

from __future__ import annotations

from pathlib import Path

from academy import benchmarks, cli, gateway
from academy.services import auth, bff, content, live, notify_center, notify_runner, scheduler, ssr, statistics
from junction.runtime import Companion, System


async def _serve_mail_sink(data_dir: Path) -> None:
    from junction.mail import MailSink

    await MailSink.from_config(data_dir=data_dir / "mail").serve()


# `junction run academy` receives its mails itself: SMTP on smtp_port (1025), the web page and the
# Mailpit-compatible API on mail_sink_port (8025); `junction up` runs `junction mail-sink` beside the services.
MAIL_SINK = Companion("mail-sink", _serve_mail_sink,
                      lambda data_dir: ["mail-sink", "--data-dir", str(data_dir / "mail")])


def build() -> System:
    """The academy system definition."""
    return System(
        name="academy",
        services=[auth.service, ssr.service, bff.service, content.service, scheduler.service, live.service,
                  notify_runner.service, notify_center.service, statistics.service],
        port=8080,
        gateway=gateway.routes,
        companions=[MAIL_SINK],
        commands=cli.app,
        brokers=frozenset({"rabbitmq"}),
        benchmarks={"academy": benchmarks.academy},
        description="lifelong learning for medical staff: articles, webinars, live rooms, reminders, points",
    )
