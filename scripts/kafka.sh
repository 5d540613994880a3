#!/usr/bin/env bash
# Install (jars from Maven Central, cached), start, stop or query a single-node Kafka on 127.0.0.1.
# Usage: scripts/kafka.sh install|start|stop|status [--home var/kafka] [--port 59092] [--controller-port 59093]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  exec .venv/bin/python -m junction.kafka.broker "$@"
fi
exec uv run --frozen python -m junction.kafka.broker "$@"
