"""The pipeline system: its services, its edge, and how junction serves it."""

from __future__ import annotations

from junction.mail.companion import MAIL_SINK
from junction.runtime import System
from pipeline import benchmarks, gateway, health
from pipeline.cli import app as commands
from pipeline.services import analytics, notification, processing, user


def build() -> System:
    """The pipeline system definition."""
    return System(
        name="pipeline",
        services=[user.service, processing.service, notification.service, analytics.service],
        port=8080,
        gateway=gateway.routes,
        health=health.endpoint,
        companions=[MAIL_SINK],
        benchmarks={"pipeline": benchmarks.pipeline},
        commands=commands,
        description="users, real-time ingestion, welcome e-mail and analytics over Kafka (event-driven page)",
    )
