"""Counting many probe runs: one target's series (``--repeat``) and a whole scan.

Rules:
- the exit code of many runs is 0 when every run passed, else the lowest
  non-zero exit code among them: the earliest stage that failed anywhere
  decides (a trust problem outranks an MQTT refusal), and a series that failed
  once is a failure, however the last run went;
- percentiles are nearest-rank over the runs in which the stage ran, passed or
  failed (a handshake that failed after 2 ms took 2 ms);
- a tally keeps counts and stage times, never reports: memory does not grow
  with the number of runs beyond one float per stage and run.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from mqtt_tls_probe.errors import EXIT_OK, ErrorInfo, Stage
from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.scan_model import RepeatSummary, ScanSummary, StageTimes, TargetOutcome

PERCENTILES = (50, 90, 99)


def percentile(ordered: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``ordered`` (sorted, not empty)."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def stage_times(samples: Iterable[float]) -> StageTimes:
    ordered = sorted(samples)
    return StageTimes(
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1],
        samples=len(ordered),
    )


def lowest_failure(codes: Iterable[int]) -> int:
    """0 when every code is 0, else the lowest non-zero one."""
    return min((code for code in codes if code != EXIT_OK), default=EXIT_OK)


def by_count(kinds: Counter[str]) -> dict[str, int]:
    """Most frequent first, ties by name: the same counts always print the same way."""
    return dict(sorted(kinds.items(), key=lambda item: (-item[1], item[0])))


class RunTally:
    """The runs of one target, added as they finish."""

    def __init__(self) -> None:
        self.runs = 0
        self.passed = 0
        self.kinds: Counter[str] = Counter()
        self.times: dict[Stage, list[float]] = {}
        self.worst: ErrorInfo | None = None  # the first failure with the lowest exit code

    def add(self, report: ProbeReport) -> None:
        self.runs += 1
        for stage in report.stages:
            if stage.ms is not None:
                self.times.setdefault(stage.name, []).append(stage.ms)
        error = report.error
        if error is None:
            self.passed += 1
            return
        self.kinds[str(error.kind)] += 1
        if self.worst is None or error.exit_code < self.worst.exit_code:
            self.worst = error

    def summary(self) -> RepeatSummary:
        return RepeatSummary(
            runs=self.runs,
            passed=self.passed,
            failed=self.runs - self.passed,
            by_kind=by_count(self.kinds),
            stages={s: stage_times(self.times[s]) for s in Stage if s in self.times},
            exit_code=self.worst.exit_code if self.worst else EXIT_OK,
            error=self.worst,
        )


class ScanTally:
    """The targets of a scan, counted as they finish (in any order)."""

    def __init__(self) -> None:
        self.done = 0
        self.passed = 0
        self.kinds: Counter[str] = Counter()
        self.exit_code = EXIT_OK

    def add(self, outcome: TargetOutcome) -> None:
        self.done += 1
        error = outcome.error
        if error is None:
            self.passed += 1
            return
        self.kinds[str(error.kind)] += 1
        self.exit_code = lowest_failure((self.exit_code, outcome.exit_code))

    @property
    def failed(self) -> int:
        return self.done - self.passed

    def summary(self) -> ScanSummary:
        return ScanSummary(
            total=self.done,
            passed=self.passed,
            failed=self.failed,
            by_kind=by_count(self.kinds),
            exit_code=self.exit_code,
        )
