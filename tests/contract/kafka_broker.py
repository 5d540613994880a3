"""The real Kafka broker for tests: one single-node KRaft broker per pytest session, started on first use.

The repository's root ``conftest.py`` offers the ``kafka_broker`` fixture to every test (``tests/``
and ``systems/``). The jars come from Maven Central the first time and stay cached
(``~/.cache/junction/kafka``); each session gets fresh storage under its temporary directory,
ports that nothing else uses (so parallel sessions do not meet), and a broker tied to the session's
process (it is terminated when the session dies).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from junction.kafka.broker import KafkaBroker, free_port


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A running broker on 127.0.0.1, stopped at the end of the session."""
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port())
    started = time.monotonic()
    broker.start(fresh=True, attached=True)
    print(f"\nkafka {broker.version} on {broker.bootstrap}, up in {time.monotonic() - started:.1f} s")
    try:
        yield broker
    finally:
        broker.stop()
