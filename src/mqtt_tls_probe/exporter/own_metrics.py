"""The exporter's own metrics on ``/metrics``: requests, probe durations, errors, the loop.

Rule: label values are bounded: ``module`` is a configured module's name (or
empty for a request that named none that exists), ``outcome`` one of
``OUTCOMES``, ``stage`` and ``kind`` the contract's names.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from mqtt_tls_probe.model import ProbeReport

PREFIX = "mqtt_tls_probe_exporter"
OUTCOMES = ("success", "failure", "bad_request", "forbidden", "busy", "error")
# Probes end between a millisecond (a refused port) and several stage timeouts.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ExporterMetrics:
    """Counters and gauges in the exporter's own registry (with process and GC metrics)."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "/probe requests by module and outcome (success, failure: the probe ran; "
            "bad_request, forbidden, busy: refused; error: the exporter failed).",
            ("module", "outcome"),
            registry=r,
        )
        self.durations = Histogram(
            f"{PREFIX}_probe_duration_seconds",
            "How long the probes of /probe requests took, by module.",
            ("module",),
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.probe_errors = Counter(
            f"{PREFIX}_probe_errors",
            "Failed probes of /probe requests, by module, failed stage and error kind.",
            ("module", "stage", "kind"),
            registry=r,
        )
        self.internal_errors = Counter(
            f"{PREFIX}_internal_errors",
            "Probes that ended in a bug of the probe (HTTP 500, or a lost background result).",
            registry=r,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_probes_in_flight",
            "Probes running now (requests and background).",
            registry=r,
        )
        self.rounds = Counter(
            f"{PREFIX}_background_rounds", "Rounds of the background loop started.", registry=r
        )
        self.round_seconds = Gauge(
            f"{PREFIX}_background_round_duration_seconds",
            "How long the last complete round of the background loop took.",
            registry=r,
        )
        self.round_end = Gauge(
            f"{PREFIX}_background_last_round_timestamp_seconds",
            "When the last complete round of the background loop ended, in Unix time.",
            registry=r,
        )
        self.background_targets = Gauge(
            f"{PREFIX}_background_targets", "Targets the last round probed.", registry=r
        )
        self.source_errors = Counter(
            f"{PREFIX}_background_source_errors",
            "Rounds whose list of targets could not be had (discovery failed); "
            "the previous results stay.",
            registry=r,
        )
        for module in modules:  # series from the start, so that rate() sees the first request
            for outcome in OUTCOMES:
                self.requests.labels(module=module, outcome=outcome)
            self.durations.labels(module=module)

    def record_probe(self, module: str, report: ProbeReport, seconds: float) -> None:
        self.durations.labels(module=module).observe(seconds)
        outcome = "success" if report.ok else "failure"
        self.requests.labels(module=module, outcome=outcome).inc()
        if report.error is not None:
            error = report.error
            self.probe_errors.labels(module=module, stage=error.stage, kind=error.kind).inc()

    def record_refusal(self, module: str, outcome: str) -> None:
        self.requests.labels(module=module, outcome=outcome).inc()
