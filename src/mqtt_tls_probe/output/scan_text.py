"""The text of ``probe scan`` and of ``--repeat``: a line per target, a table per series.

Rule: read reports, compute nothing, print nothing. A scan's lines are
written as targets finish, so each line stands alone: the target, PASS or
FAIL, the failing stage and kind, the TLS version, the leaf's days left and
the run's total time; then a summary. ``--repeat`` adds a table of each
stage's percentiles.
"""

from __future__ import annotations

from mqtt_tls_probe.errors import Stage
from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.output.escape import escape_controls
from mqtt_tls_probe.output.text import render_report
from mqtt_tls_probe.scan_model import (
    RepeatedProbeReport,
    RepeatSummary,
    ScanReport,
    ScanSummary,
    TargetOutcome,
)

_FAILURE_WIDTH = 32  # "roundtrip message_not_received" and a margin
_STAGE_WIDTH = max(len(s) for s in Stage)


def endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target_label(report: ProbeReport) -> str:
    return endpoint(report.target.host, report.target.port)


def total_ms(report: ProbeReport) -> float:
    return sum(s.ms for s in report.stages if s.ms is not None)


def outcome_lines(outcome: TargetOutcome, width: int) -> list[str]:
    """The line of a finished target (and with --repeat, its table), ``width`` for the label."""
    report = outcome.report
    error = outcome.error
    mark = "PASS" if error is None else "FAIL"
    failure = f"{error.stage} {error.kind}" if error is not None else ""
    tls = report.tls.version if report.tls and report.tls.version else "-"
    leaf = f"leaf {report.chain[0].days_left}d" if report.chain else "-"
    line = (
        f"{target_label(report):<{width}}  {mark}  {failure:<{_FAILURE_WIDTH}}  "
        f"{tls:<7}  {leaf:<10}  {total_ms(report):8.1f} ms"
    )
    if report.listener is not None and not report.listener.tls:
        line += "  no TLS (plain MQTT)"  # --discover: the no_tls warning, in a word
    if outcome.repeat is None:
        return [escape_controls(line)]  # a target's name may come from the cluster
    return [escape_controls(line), *["    " + row for row in repeat_lines(outcome.repeat)]]


def repeat_lines(repeat: RepeatSummary) -> list[str]:
    """The series in a few lines: counts, then p50/p90/p99/max of each stage in ms."""
    kinds = ", ".join(f"{kind} {count}" for kind, count in repeat.by_kind.items())
    counts = f"{repeat.runs} runs, {repeat.passed} passed, {repeat.failed} failed"
    lines = [f"repeat: {counts}" + (f" ({kinds})" if kinds else "")]
    lines.append(
        f"  {'stage':<{_STAGE_WIDTH}}  {'p50 ms':>8}  {'p90 ms':>8}  {'p99 ms':>8}  "
        f"{'max ms':>8}  {'runs':>5}"
    )
    for stage, t in repeat.stages.items():
        lines.append(
            f"  {stage:<{_STAGE_WIDTH}}  {t.p50:8.1f}  {t.p90:8.1f}  {t.p99:8.1f}  "
            f"{t.max:8.1f}  {t.samples:5d}"
        )
    return lines


def summary_lines(report: ScanReport) -> list[str]:
    s: ScanSummary = report.summary
    noun = "target" if s.total == 1 else "targets"
    probes = f", {report.probes} probes" if report.probes != s.total else ""
    lines = [
        f"scan: {s.total} {noun} in {report.seconds:.2f} s{probes}: "
        f"{s.passed} passed, {s.failed} failed (exit {s.exit_code})"
    ]
    if s.by_kind:
        kinds = ", ".join(f"{kind} {count}" for kind, count in s.by_kind.items())
        lines.append(f"failed by kind: {kinds}")
    return lines


def progress_line(done: int, total: int, failed: int, probes: int, elapsed: float) -> str:
    rate = probes / elapsed if elapsed > 0 else 0.0
    return f"scan: {done}/{total} targets, {failed} failed, {rate:.0f} probes/s"


def render_repeated(report: RepeatedProbeReport, *, verbose: bool = False) -> str:
    """``connect --repeat``: the last run as connect shows it, then the series."""
    lines = render_report(report.report, verbose=verbose)
    lines += ["", *repeat_lines(report.repeat)]
    if report.repeat.failed:
        lines.append(f"exit {report.exit_code}: at least one run failed (the lowest exit code)")
    return "\n".join(escape_controls(line) for line in lines) + "\n"
