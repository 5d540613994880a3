# One entry point for every task; CI calls `make test` verbatim (through .ci/run).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
PORT ?= 4000

.PHONY: install browser kafka kafka-up kafka-down postgres postgres-up postgres-down rabbitmq rabbitmq-up rabbitmq-down run test lint typecheck unit bench clean

install: ## install the locked dependencies into .venv
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

browser: ## Debian's Chromium for the browser tests
	@# Chromium from Debian's mirror, never a downloaded browser; skipped where there is no apt-get
	@# (the browser tests then skip themselves).
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

kafka: install ## Java + Maven (Debian) and the Kafka broker's jars from Maven Central, cached in ~/.cache/junction
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; }
	@scripts/kafka.sh install >/dev/null

kafka-up: kafka ## start a single-node Kafka on 127.0.0.1:59092 (data in var/kafka)
	scripts/kafka.sh start

kafka-down: ## stop it
	scripts/kafka.sh stop

postgres: install ## PostgreSQL from Debian when missing (in CI a failure stops here; elsewhere its tests skip)
	@scripts/postgres.sh install --optional >/dev/null

postgres-up: postgres ## start the private PostgreSQL on 127.0.0.1:55432 (data in var/pg); the tests start it too
	scripts/postgres.sh start

postgres-down: ## stop it
	scripts/postgres.sh stop

rabbitmq: install ## RabbitMQ from Debian when missing, its service kept off (in CI a failure stops here; elsewhere its tests skip)
	@scripts/rabbitmq.sh install --optional >/dev/null

rabbitmq-up: rabbitmq ## start the private RabbitMQ on 127.0.0.1:56720 (data in var/rabbitmq); the tests start their own
	scripts/rabbitmq.sh start

rabbitmq-down: ## stop it
	scripts/rabbitmq.sh stop

run: install ## start ebike on the embedded default (http://localhost:4000)
	$(UV) run --frozen junction run ebike --port $(PORT)

lint: install
	$(UV) run --frozen ruff check src systems tests

typecheck: install
	$(UV) run --frozen mypy

test: lint typecheck browser kafka postgres rabbitmq ## lint, type-check and run every test
	$(UV) run --frozen pytest

unit: install ## the fast tests only
	$(UV) run --frozen pytest tests/unit

bench: install ## print the platform's benchmark figures
	$(UV) run --frozen junction bench append
	$(UV) run --frozen junction bench balance
	$(UV) run --frozen junction bench e2e
	$(UV) run --frozen junction bench shop

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
