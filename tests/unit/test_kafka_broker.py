"""``KafkaBroker.at``: the broker a home was configured for, found again from its files (to stop or restart it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from junction.kafka.broker import BrokerError, KafkaBroker


def test_a_configured_home_gives_back_its_ports(tmp_path: Path) -> None:
    KafkaBroker(tmp_path, port=41234, controller_port=41235)._configure()  # what `start` writes first
    found = KafkaBroker.at(tmp_path)
    assert (found.home, found.port, found.controller_port) == (tmp_path, 41234, 41235)
    assert found.bootstrap == "127.0.0.1:41234"


def test_a_home_without_a_broker_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="no Kafka broker was configured"):
        KafkaBroker.at(tmp_path)
    (tmp_path / "server.properties").write_text("process.roles=broker\n")
    with pytest.raises(BrokerError, match="names no PLAINTEXT and CONTROLLER listeners"):
        KafkaBroker.at(tmp_path)
