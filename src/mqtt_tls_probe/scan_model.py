"""The reports of many probes: ``probe scan`` and ``--repeat`` (``model.py``'s rule applies).

Kept apart from ``model.py`` only because ``probe connect`` imports that
module on every start, and building these classes costs it milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from mqtt_tls_probe.errors import ErrorInfo, Stage
from mqtt_tls_probe.model import ProbeReport


@dataclass(frozen=True)
class StageTimes:
    """One stage's times over a series of runs, in ms (nearest-rank percentiles)."""

    p50: float
    p90: float
    p99: float
    max: float
    samples: int  # the runs in which the stage ran (passed or failed)


@dataclass(frozen=True)
class RepeatSummary:
    """``--repeat N``: how the runs of one target went, and each stage's times."""

    runs: int
    passed: int
    failed: int
    by_kind: dict[str, int]  # failed runs, by error kind
    stages: dict[Stage, StageTimes]  # in stage order; stages that never ran are absent
    exit_code: int  # 0 when every run passed, else the lowest exit code of a run
    error: ErrorInfo | None = None  # the failure that decided exit_code (the first such run)


@dataclass(frozen=True)
class RepeatedProbeReport:
    """``probe connect --repeat N``: the last run in full, and the series."""

    report: ProbeReport
    repeat: RepeatSummary

    @property
    def exit_code(self) -> int:
        return self.repeat.exit_code


@dataclass(frozen=True)
class TargetOutcome:
    """One target of ``probe scan``: its (last) report, and with --repeat its series."""

    index: int  # position in the input, from 0
    report: ProbeReport
    repeat: RepeatSummary | None = None

    @property
    def exit_code(self) -> int:
        return self.repeat.exit_code if self.repeat else self.report.exit_code

    @property
    def error(self) -> ErrorInfo | None:
        """The failure that decided the target's exit code (None: it passed)."""
        return self.repeat.error if self.repeat else self.report.error


@dataclass(frozen=True)
class ScanSummary:
    total: int
    passed: int
    failed: int
    by_kind: dict[str, int]  # failed targets, by the kind that decided each one's exit code
    exit_code: int  # 0 when every target passed, else the lowest exit code of a target


@dataclass(frozen=True)
class ScanReport:
    """``probe scan``: every target's outcome in input order (when kept), and the summary."""

    outcomes: tuple[TargetOutcome, ...]
    summary: ScanSummary
    probes: int  # probe runs made (targets x rounds)
    seconds: float  # wall time of the scan

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code
