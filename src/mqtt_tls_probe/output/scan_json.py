"""The JSON of ``probe scan`` (``json``, ``jsonl``) and of ``--repeat``.

Rule: each target is connect's report document (``json_doc.report_json``) of
its last run; with ``--repeat`` it gains ``repeat``, and its ``ok`` and
``exit_code`` are the series' (every other key is the last run's). ``json``
is one document ``{"targets", "summary", "exit_code"}``, targets in input
order; ``jsonl`` is one compact target document per line, as each finishes,
and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from mqtt_tls_probe.model import ProbeReport
from mqtt_tls_probe.output.json_doc import report_json
from mqtt_tls_probe.scan_model import RepeatedProbeReport, RepeatSummary, ScanReport, TargetOutcome


def repeat_json(repeat: RepeatSummary) -> dict[str, Any]:
    return {
        "runs": repeat.runs,
        "passed": repeat.passed,
        "failed": repeat.failed,
        "by_kind": dict(repeat.by_kind),
        "stages": {
            str(stage): {
                "p50": round(t.p50, 2),
                "p90": round(t.p90, 2),
                "p99": round(t.p99, 2),
                "max": round(t.max, 2),
                "samples": t.samples,
            }
            for stage, t in repeat.stages.items()
        },
    }


def series_json(report: ProbeReport, repeat: RepeatSummary | None) -> dict[str, Any]:
    document = report_json(report)
    if repeat is not None:
        document["ok"] = repeat.exit_code == 0
        document["repeat"] = repeat_json(repeat)
        document["exit_code"] = repeat.exit_code
    return document


def outcome_json(outcome: TargetOutcome) -> dict[str, Any]:
    return series_json(outcome.report, outcome.repeat)


def scan_document(report: ScanReport) -> dict[str, Any]:
    s = report.summary
    return {
        "targets": [outcome_json(o) for o in report.outcomes],
        "summary": {
            "total": s.total,
            "passed": s.passed,
            "failed": s.failed,
            "by_kind": dict(s.by_kind),
        },
        "exit_code": s.exit_code,
    }


def render_scan(report: ScanReport) -> str:
    return json.dumps(scan_document(report), indent=2) + "\n"


def jsonl_line(outcome: TargetOutcome) -> str:
    return json.dumps(outcome_json(outcome), separators=(",", ":")) + "\n"


def render_repeated(report: RepeatedProbeReport) -> str:
    return json.dumps(series_json(report.report, report.repeat), indent=2) + "\n"
