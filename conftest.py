"""Session fixtures shared by every test tree (``tests/`` and ``systems/``): the private PostgreSQL
server and the Kafka broker, each started once per session on first use."""

from tests.contract.kafka_broker import kafka_broker  # noqa: F401 (fixture)
from tests.contract.postgres_server import postgres_database, postgres_server  # noqa: F401 (fixtures)
