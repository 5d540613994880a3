"""The academy system: its nine services, its edge, and how junction serves it."""

from __future__ import annotations

from academy import benchmarks, cli, gateway
from academy.services import auth, bff, content, live, notify_center, notify_runner, scheduler, ssr, statistics
from junction.mail.companion import MAIL_SINK
from junction.runtime import System


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
