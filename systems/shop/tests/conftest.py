"""Fixtures of the shop's tests: the system behind its gateway on a virtual clock, its mails in a real SMTP
sink that the test starts (``JUNCTION_SMTP_PORT`` points the notification service's sender at it).

``shop`` runs embedded here; ``acceptance/conftest.py`` runs it on both topologies.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from junction.clock import VirtualClock
from junction.mail import MailSink
from junction.mail.testing import received
from junction.runtime import Runtime
from junction.testing import Distributed, running
from shop.contracts.events import OrderPlaced
from shop.contracts.inventory import InventoryServiceStub
from shop.system import build

USER = {"userId": "user123", "email": "user@example.com", "firstName": "John", "lastName": "Doe"}


def order_body(sku: str, quantity: Any, price: Any = 29.99, user: str = "user123") -> dict[str, Any]:
    """The spec's order (section 2), for ``sku`` and ``quantity``."""
    return {"orderNumber": "ORD-001", "skuCode": sku, "price": price, "quantity": quantity,
            "userDetails": {**USER, "userId": user}}


class Shop:
    """A running shop driven through its gateway, as a client of the reference would drive it."""

    def __init__(self, runtime: Runtime, clock: VirtualClock, sink: MailSink,
                 distributed: Distributed | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        self.sink = sink
        self.distributed = distributed
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="http://shop.test")

    async def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, str]:
        """One call through the gateway; its status and text."""
        content = raw if raw is not None else None if body is None else json.dumps(body).encode()
        answer = await self.http.request(method, path, content=content, headers={"content-type": "application/json"})
        return answer.status_code, answer.text

    async def create(self, sku: str, quantity: int) -> tuple[int, str]:
        """POST /api/inventory."""
        return await self.request("POST", "/api/inventory", {"skuCode": sku, "quantity": quantity})

    async def stock(self, *skus: str) -> list[int | None]:
        """GET /api/inventory with the SKUs as its JSON body."""
        status, text = await self.request("GET", "/api/inventory", list(skus))
        assert status == 200, text
        levels: list[int | None] = json.loads(text)
        return levels

    async def order(self, sku: str, quantity: Any, **options: Any) -> tuple[int, str]:
        """POST /api/order."""
        return await self.request("POST", "/api/order", order_body(sku, quantity, **options))

    async def orders(self, user: str) -> list[dict[str, Any]]:
        """GET /api/order/{user}."""
        status, text = await self.request("GET", f"/api/order/{user}")
        assert status == 200, text
        found: list[dict[str, Any]] = json.loads(text)
        return found

    async def placed(self) -> list[OrderPlaced]:
        """Every OrderPlaced in the order service's log (its outbox)."""
        log = await self.runtime.service("order").store.read_log(0, 100_000)
        return [e.event for e in log if isinstance(e.event, OrderPlaced)]

    async def mails(self) -> list[dict[str, Any]]:
        """The sink's mails, each as its Mailpit-compatible API gives it (its text too), newest first."""
        return await received(self.sink)

    def inventory(self) -> Any:
        """A stub of inventory's gRPC service, as another service calls it."""
        channels = self.runtime.transport.channels
        return channels.stub("inventory", InventoryServiceStub)

    async def settle(self) -> None:
        """Let every consumer, relay and the mail sender catch up."""
        await self.runtime.settle()


@contextlib.asynccontextmanager
async def open_shop(data_dir: Path, sink: MailSink, distributed: Distributed | None = None) -> AsyncIterator[Shop]:
    """The shop on the topology, stopped afterwards."""
    clock = VirtualClock()
    async with running(build(), data_dir, distributed, clock=clock) as runtime:
        shop = Shop(runtime, clock, sink, distributed)
        try:
            yield shop
        finally:
            await shop.http.aclose()


@pytest.fixture
async def shop(tmp_path: Path, mail_sink: MailSink) -> AsyncIterator[Shop]:
    """The shop, embedded."""
    async with open_shop(tmp_path / "data", mail_sink) as running_shop:
        yield running_shop
