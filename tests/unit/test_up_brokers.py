"""``junction up --distributed`` starts RabbitMQ for the systems that declare they need it, and only for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

import junction.infra.rabbitmq
from junction.runtime import System
from junction.up import process_specs, start_rabbitmq
from tests.unit import toy


class FakeNode:
    """Stands for a RabbitMQ node: records that it was started."""

    url = "amqp://guest:guest@127.0.0.1:1/"
    log_dir = Path("/nowhere")
    started = False

    def start(self) -> str:
        self.started = True
        return self.url

    def stop(self) -> None:
        self.started = False


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> FakeNode:
    fake = FakeNode()
    monkeypatch.setattr(junction.infra.rabbitmq, "private_node", lambda home: fake)
    return fake


Started = tuple[dict[str, str], list[Callable[[], None]], dict[str, dict[str, str]]]


def servers_of(system: System, tmp_path: Path) -> Started:
    """What ``start_rabbitmq`` adds for ``system``: the processes' settings, the stops, the servers."""
    env: dict[str, str] = {}
    stops: list[Callable[[], None]] = []
    servers: dict[str, dict[str, str]] = {}
    start_rabbitmq(system, tmp_path, Console(quiet=True), env, stops, servers)
    return env, stops, servers


def test_a_system_that_declares_rabbitmq_gets_a_node_and_every_process_its_url(node: FakeNode, tmp_path: Path) -> None:
    queued = System("queued", toy.system().services, brokers=frozenset({"rabbitmq"}))
    env, stops, servers = servers_of(queued, tmp_path)
    assert node.started and stops == [node.stop] and servers["rabbitmq"]["address"] == node.url
    specs = process_specs(queued, tmp_path, 4000, 4100, env)
    assert {spec.env["JUNCTION_RABBITMQ_URL"] for spec in specs} == {node.url}  # services and gateway


def test_a_system_that_does_not_gets_none(node: FakeNode, tmp_path: Path) -> None:
    env, stops, servers = servers_of(toy.system(), tmp_path)
    assert not node.started and env == {} and stops == [] and servers == {}


def test_an_unknown_broker_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown broker rabitmq"):
        System("typo", toy.system().services, brokers=frozenset({"rabitmq"}))
