"""The families of ``output.prometheus`` as a prometheus_client collector.

Rule: prometheus_client does the naming checks, escaping and encoding; this
module only hands it the plain families, merged by name (the exposition
formats allow a name once per page). A custom collector (not ``Gauge``
objects) because a page is rebuilt from reports: series of a target that is
gone simply stop being collected, with no labelled child to remove.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from mqtt_tls_probe.output.prometheus import MetricFamily, merge


class FamiliesCollector:
    """Collects whatever ``source`` returns at scrape time (prometheus_client's Collector)."""

    def __init__(self, source: Callable[[], Iterable[MetricFamily]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in merge(self._source()):
            gauge = GaugeMetricFamily(family.name, family.documentation, labels=family.label_names)
            for values, value in family.samples:
                gauge.add_metric(values, value)
            yield gauge


def registry_of(families: Iterable[MetricFamily]) -> CollectorRegistry:
    """A fresh registry holding ``families`` only: the page of one ``/probe`` request."""
    fixed = tuple(families)
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(lambda: fixed))
    return registry
