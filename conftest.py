"""Session fixtures shared by every test tree (``tests/`` and ``systems/``): the private PostgreSQL
server, the Kafka broker and the RabbitMQ node, each started once per session on first use."""

from tests.contract.kafka_broker import kafka_broker  # noqa: F401 (fixture)
from tests.contract.postgres_server import postgres_database, postgres_server  # noqa: F401 (fixtures)
from tests.contract.rabbitmq_broker import rabbitmq_broker  # noqa: F401 (fixture)
