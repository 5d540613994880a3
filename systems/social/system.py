"""The social system: its services, its edge, and how junction serves it."""

from __future__ import annotations

from junction.runtime import System
from social import benchmarks, gateway
from social.cli import commands
from social.services import friend, recommendation, user


def build() -> System:
    """The social system definition."""
    return System(
        name="social",
        services=[user.service, friend.service, recommendation.service],
        port=9000,
        gateway=gateway.routes,
        commands=commands,
        benchmarks={"social": benchmarks.social},
        description="users, friends and graph recommendations (kbastani/event-sourcing-microservices-example)",
    )
