#!/usr/bin/env bash
# Install (apt-get, when missing), start, stop or query the private RabbitMQ node on 127.0.0.1.
# Usage: scripts/rabbitmq.sh install|start|stop|status|url [--home var/rabbitmq] [--port 56720] [--optional]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m junction.infra.rabbitmq "$@"
