#!/usr/bin/env bash
# Install (apt-get, when missing), start, stop or query the private PostgreSQL cluster on 127.0.0.1.
# Usage: scripts/postgres.sh install|start|stop|status|dsn [--home var/pg] [--port 55432] [--export]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m junction.infra.postgres "$@"
