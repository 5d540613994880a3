"""The ebike system: its services, and how junction serves it."""

from __future__ import annotations

from ebike import benchmarks
from ebike.gateway import cli
from ebike.gateway.app import gateway_routes
from ebike.services import accounting, auth, customers, rentals, stations, vehicles
from ebike.web import web_routes
from junction.runtime import System


def build() -> System:
    """The ebike system definition."""
    return System(
        name="ebike",
        services=[auth.service, accounting.service, rentals.service, stations.service, vehicles.service,
                  customers.service],
        port=4000,
        # The public port serves the gateway (GraphQL at /graphql, the web UI at /); the services'
        # internal APIs stay in-process. The web UI plugs in here: gateway_routes(web=...).
        gateway=gateway_routes(web=lambda gateway: web_routes()),
        commands=cli.app,
        benchmarks={"balance": benchmarks.balance, "e2e": benchmarks.e2e, "gateway": benchmarks.gateway},
        description="e-bike rentals with event-sourced accounting and autonomous a-bikes",
    )
