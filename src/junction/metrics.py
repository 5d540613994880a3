"""Prometheus exposition of a runtime's state: log heads, consumer positions and lag, parked
messages and fired timers, read at scrape time (nothing is counted on the hot paths)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _StatusCollector(Collector):
    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        head = GaugeMetricFamily("junction_log_head", "Highest committed log position", labels=["service"])
        position = GaugeMetricFamily("junction_consumer_position", "Consumer checkpoint position",
                                     labels=["service", "subscription", "source"])
        lag = GaugeMetricFamily("junction_consumer_lag", "Events the consumer has not handled yet",
                                labels=["service", "subscription", "source"])
        handled = CounterMetricFamily("junction_consumer_handled", "Events handled since start",
                                      labels=["service", "subscription", "source"])
        parked = GaugeMetricFamily("junction_parked_messages", "Messages parked for an operator", labels=["service"])
        fired = CounterMetricFamily("junction_timers_fired", "Timers fired since start", labels=["service"])
        background = GaugeMetricFamily("junction_background", "A background task's figures (e.g. mail pending)",
                                       labels=["service", "task", "figure"])
        for name, service in self.status["services"].items():
            head.add_metric([name], service["head"])
            parked.add_metric([name], service["parked"])
            fired.add_metric([name], service["timers_fired"])
            for task, figures in service.get("background", {}).items():
                for figure, value in figures.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        background.add_metric([name, task, figure], value)
            for sub, info in service["consumers"].items():
                labels = [name, sub, info["source"]]
                position.add_metric(labels, info["position"])
                lag.add_metric(labels, info["lag"])
                handled.add_metric(labels, info["handled"])
        yield from (head, position, lag, handled, parked, fired, background)


def exposition(status: dict[str, Any]) -> bytes:
    """The Prometheus text format of a runtime status report."""
    registry = CollectorRegistry()
    registry.register(_StatusCollector(status))
    return generate_latest(registry)
