"""The background loop: every interval, probe each listed target; ``/metrics`` shows the latest.

Rule: what to probe comes from a ``TargetSource``, called once per round, so
that secrets and discovered listeners are fresh each time. ``static_targets``
is the source of ``--target``; BrokerListener discovery (``--discover``)
plugs in as another source: a function that lists the listeners and returns
``(target, ProbeConfig)`` pairs (see ``cli/exporter.py``). A source that fails
keeps the previous round's results (a flaky API server must not blank the
broker's metrics); a target no longer listed drops out after the next round.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from mqtt_tls_probe.config import ProbeConfig
from mqtt_tls_probe.exporter.modules import Module
from mqtt_tls_probe.exporter.own_metrics import ExporterMetrics
from mqtt_tls_probe.exporter.probing import ProbeGate, timed_probe
from mqtt_tls_probe.exporter.targets import normalize_target
from mqtt_tls_probe.output.prometheus import MetricFamily, report_metrics

TargetSource = Callable[[], Sequence[tuple[str, ProbeConfig]]]
EventLog = Callable[..., None]  # log(event, **fields)
_JOIN_STEP = 0.1


def static_targets(targets: Sequence[str], module: Module) -> TargetSource:
    """The source of ``--target HOST:PORT``: the same targets each round, probed with ``module``.

    Raises (when called):
        UsageError: a secret file of the module can no longer be read.
    """
    normalized = [normalize_target(t) for t in targets]  # a bad target fails at start

    def source() -> Sequence[tuple[str, ProbeConfig]]:
        return [(target, module.config_for(target)) for target in normalized]

    return source


class BackgroundLoop:
    """A daemon thread running rounds; ``families`` is the latest result of each target."""

    def __init__(
        self,
        source: TargetSource,
        interval: float,
        gate: ProbeGate,
        metrics: ExporterMetrics,
        log: EventLog,
    ) -> None:
        self._source = source
        self._interval = interval
        self._gate = gate
        self._metrics = metrics
        self._log = log
        self._results: dict[str, tuple[MetricFamily, ...]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-background", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def families(self) -> list[MetricFamily]:
        with self._lock:
            results = list(self._results.values())
        return [family for families in results for family in families]

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            self._round()
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def _round(self) -> None:
        self._metrics.rounds.inc()
        started = time.monotonic()
        try:
            entries = dict(self._source())  # one probe per target: the last entry wins
        except Exception as exc:
            self._metrics.source_errors.inc()
            self._log("background-source-failed", error=f"{type(exc).__name__}: {exc}")
            return
        latest: dict[str, tuple[MetricFamily, ...]] = {}
        workers = [
            threading.Thread(
                target=self._probe, args=(target, config, latest), name=f"probe {target}"
            )
            for target, config in entries.items()
        ]
        for worker in workers:
            worker.daemon = True
            worker.start()
        for worker in workers:
            while worker.is_alive() and not self._stopping.is_set():
                worker.join(_JOIN_STEP)  # each probe is bounded by its stage timeouts
        if self._stopping.is_set():
            return
        with self._lock:
            self._results = latest
        self._metrics.background_targets.set(len(entries))
        self._metrics.round_seconds.set(time.monotonic() - started)
        self._metrics.round_end.set_to_current_time()

    def _probe(
        self, target: str, config: ProbeConfig, latest: dict[str, tuple[MetricFamily, ...]]
    ) -> None:
        if not self._gate.enter_unless(self._stopping):
            return
        try:
            with self._metrics.in_flight.track_inprogress():
                timed = timed_probe(lambda: config)
        except Exception as exc:
            self._metrics.internal_errors.inc()
            self._log("background-probe-failed", target=target, error=type(exc).__name__)
            return
        finally:
            self._gate.leave()
        latest[target] = report_metrics(timed.report, timed.seconds, {"target": target})
