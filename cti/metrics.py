"""Prometheus metrics with a registry per application (no process-global state)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(name, doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, labels, registry=self.registry)

    def histogram(self, name: str, doc: str, labels: tuple[str, ...] = (), buckets=None) -> Histogram:
        extra = {"buckets": buckets} if buckets else {}
        return Histogram(name, doc, labels, registry=self.registry, **extra)

    def collect_from(self, collect: Callable[[], list]) -> None:
        """Register a callable that yields metric families read at scrape time.

        Components keep plain integer stats on their hot paths; this reads them only when
        Prometheus scrapes, so counting costs nothing per event.
        """
        self.registry.register(_CallbackCollector(collect))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _CallbackCollector:
    def __init__(self, collect: Callable[[], list]) -> None:
        self._collect = collect

    def collect(self):
        return self._collect()

    def describe(self):
        return []


def stat_families(prefix: str, doc: str, label: str, rows: dict[str, dict[str, int]],
                  gauges: frozenset[str] = frozenset()) -> list:
    """Metric families from {label_value: {stat: value}}: counters, or gauges if named so."""
    families: dict[str, object] = {}
    for label_value, stats in rows.items():
        for stat, value in stats.items():
            family = families.get(stat)
            if family is None:
                kind = GaugeMetricFamily if stat in gauges else CounterMetricFamily
                family = families[stat] = kind(f"{prefix}_{stat}", f"{doc}: {stat}", labels=[label])
            family.add_metric([label_value], value)
    return list(families.values())
