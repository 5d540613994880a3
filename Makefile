# One entry point for every task; CI calls `make test` verbatim (through .ci/run).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
UV ?= $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
PORT ?= 4000

.PHONY: install browser run test lint typecheck unit bench clean

install: ## install the locked dependencies into .venv
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet

browser: ## Debian's Chromium for the browser tests
	@# Chromium from Debian's mirror, never a downloaded browser; skipped where there is no apt-get
	@# (the browser tests then skip themselves).
	@command -v chromium >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

run: install ## start ebike on the embedded default (http://localhost:4000)
	$(UV) run --frozen junction run ebike --port $(PORT)

lint: install
	$(UV) run --frozen ruff check src systems tests

typecheck: install
	$(UV) run --frozen mypy

test: lint typecheck browser ## lint, type-check and run every test
	$(UV) run --frozen pytest

unit: install ## the fast tests only
	$(UV) run --frozen pytest tests/unit

bench: install ## print the platform's benchmark figures
	$(UV) run --frozen junction bench append
	$(UV) run --frozen junction bench balance
	$(UV) run --frozen junction bench e2e

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
