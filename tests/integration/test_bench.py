"""The distributed benchmarks run end to end with tiny counts and print their figures as JSON.

They use the session's PostgreSQL server and Kafka broker (``JUNCTION_DATABASE_URL``,
``JUNCTION_KAFKA_BOOTSTRAP``) rather than starting their own. No figure is asserted: only that
each command works and reports what it promises.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from junction.kafka.broker import KafkaBroker
from tests.conftest import Cli
from tests.contract.postgres_server import PostgresServer


def report(cli: Cli, *args: str) -> dict[str, Any]:
    """Run ``junction bench ... --quick --json``; the JSON object on its last line."""
    result = cli("bench", *args, "--quick", "--json")
    assert result.returncode == 0, result.stderr
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_bench_append_on_postgres_next_to_raw_inserts(cli: Cli, postgres_server: PostgresServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_DATABASE_URL", postgres_server.dsn)
    figures = report(cli, "append", "--store", "postgres", "--writers", "1,3")
    assert (figures["benchmark"], figures["store"]) == ("append", "postgres")
    assert set(figures["writers"]) == {"1", "3"}
    for row in figures["writers"].values():
        assert set(row) == {"raw_events_per_s", "junction_events_per_s", "ratio"}
        assert row["raw_events_per_s"] > 0 and row["junction_events_per_s"] > 0


def test_bench_e2e_distributed_through_kafka(cli: Cli, postgres_server: PostgresServer, kafka_broker: KafkaBroker,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUNCTION_DATABASE_URL", postgres_server.dsn)
    monkeypatch.setenv("JUNCTION_KAFKA_BOOTSTRAP", kafka_broker.bootstrap)
    figures = report(cli, "e2e", "--distributed")
    assert (figures["benchmark"], figures["topology"]) == ("e2e", "distributed")
    assert figures["samples"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_bench_options_that_do_not_apply_are_refused(cli: Cli) -> None:
    for args, message in ((("e2e", "--store", "postgres"), "--store and --writers apply to `bench append` only"),
                          (("append", "--writers", "2"), "--writers needs --store postgres"),
                          (("append", "--store", "postgres", "--writers", "0,x"), "positive integers"),
                          (("append", "--distributed"), "--distributed applies to `bench e2e` only"),
                          (("append", "--store", "oracle"), "unknown store 'oracle'")):
        result = cli("bench", *args)
        assert result.returncode == 1
        assert message in result.stderr
