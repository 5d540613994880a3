"""The real RabbitMQ broker for tests: one private node per pytest session, started on first use.

The repository's root ``conftest.py`` offers the ``rabbitmq_broker`` fixture to every test. The node
is Debian's ``rabbitmq-server`` (installed with apt-get when missing, ``junction.infra.rabbitmq``),
with fresh data under the session's temporary directory, ports that nothing else uses (so parallel
sessions and a developer's own node do not meet), and a life tied to the session's process. When
it cannot be had, the tests that need it fail with the reason in CI (``CI=true``) and are skipped
with it elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from junction.infra.postgres import in_ci
from junction.infra.rabbitmq import LocalRabbit, RabbitError, private_node


@pytest.fixture(scope="session")
def rabbitmq_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRabbit]:
    """A running node on 127.0.0.1 (its ``url``), stopped at the end of the session."""
    node = private_node(tmp_path_factory.mktemp("rabbitmq"))
    started = time.monotonic()
    try:
        node.start(fresh=True, attached=True)
    except (RabbitError, OSError) as error:
        node.stop()
        message = f"RabbitMQ is not available for the tests: {error}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    print(f"\nrabbitmq on {node.url}, up in {time.monotonic() - started:.1f} s")
    try:
        yield node
    finally:
        node.stop()
