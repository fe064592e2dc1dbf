"""One probe as the exporter runs it: through the concurrency cap, timed, never raising.

Rule: at most ``max_concurrent`` probes run at once, for ``/probe`` requests
and the background loop together. A request beyond the cap is refused at once
(HTTP 503: Prometheus retries at the next scrape, and a queue would only make
every scrape late); the background loop waits for a slot. Each probe is bounded
by its module's stage timeouts (``run_probe``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mqtt_tls_probe.config import ProbeConfig
from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.orchestrators.connect import run_probe

_WAIT_STEP = 0.1  # how often a waiting background probe looks at the stop flag


@dataclass(frozen=True)
class TimedReport:
    report: ProbeReport
    seconds: float  # the probe's own wall time, config building included


class ProbeGate:
    """The cap on concurrent probes."""

    def __init__(self, max_concurrent: int) -> None:
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def try_enter(self) -> bool:
        return self._slots.acquire(blocking=False)

    def enter_unless(self, stopping: threading.Event) -> bool:
        """Wait for a slot; False when ``stopping`` is set first."""
        while not stopping.is_set():
            if self._slots.acquire(timeout=_WAIT_STEP):
                return True
        return False

    def leave(self) -> None:
        self._slots.release()


def timed_probe(build: Callable[[], ProbeConfig]) -> TimedReport:
    """Build the config (reading secret files) and probe, timing both.

    Raises:
        UsageError: the config cannot be built (a secret file is gone).
    """
    started = time.perf_counter()
    report = run_probe(build())
    return TimedReport(report, time.perf_counter() - started)
