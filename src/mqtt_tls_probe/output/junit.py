"""JUnit XML for CI (``--junit FILE``): a ``<testsuite>`` per target, a ``<testcase>`` per stage.

Rule: read the reports, compute nothing but the totals JUnit wants; build the
document with ElementTree. CI systems key a case by ``classname`` + ``name``
(GitLab keeps the first of duplicates), so ``classname`` is the target
(``host:port``, an IPv6 address in brackets) and ``name`` the stage.

ElementTree writes control characters through, which makes the document
invalid XML 1.0 (certificate names and broker messages come from outside).
Every text and attribute therefore goes through ``xml_text``, which follows
pytest's ``bin_xml_escape`` (``_pytest/junitxml.py``): the characters XML 1.0
forbids, and DEL, become a visible ``#xNN``. ANSI escape sequences are
dropped whole first: their payload (``[2J``) is a terminal command, not text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from mqtt_tls_probe.config import format_target
from mqtt_tls_probe.model import ProbeReport, StageResult

# ECMA-48: CSI (ESC [ params intermediates final), OSC and other strings ended by
# BEL or ST (ESC \), and the two-character escapes (ESC followed by @ to _).
_ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
)
# XML 1.0: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF];
# like pytest, DEL (#x7F) is treated as forbidden too.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\x7e\x80-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# pytest's budget for a failure's message attribute; the element text holds the rest.
_MESSAGE_BUDGET = 500


def xml_text(value: object) -> str:
    """``value`` as text XML 1.0 can hold: ANSI sequences dropped, forbidden characters shown."""
    text = _ANSI_ESCAPE.sub("", str(value))
    return _NOT_XML_CHAR.sub(_visible, text)


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"#x{code:02X}" if code <= 0xFF else f"#x{code:04X}"


def render(
    reports: Sequence[ProbeReport], started: datetime, *, name: str = "probe connect"
) -> bytes:
    """The JUnit document of ``reports`` (one suite each), UTF-8 with an XML declaration.

    ``started`` is when the run began: the suites' ``timestamp``.
    """
    root = ET.Element("testsuites", name=xml_text(name))
    suites = [_suite(report, started) for report in reports]
    root.extend(suites)
    for counter in ("tests", "failures", "errors", "skipped"):
        root.set(counter, str(sum(int(suite.get(counter, "0")) for suite in suites)))
    root.set("time", _seconds(sum(float(suite.get("time", "0")) for suite in suites)))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _suite(report: ProbeReport, started: datetime) -> ET.Element:
    target = format_target(report.target.host, report.target.port)
    stages = report.stages
    suite = ET.Element(
        "testsuite",
        name=xml_text(target),
        tests=str(len(stages)),
        failures=str(sum(1 for s in stages if not s.ok and not s.skipped)),
        errors="0",  # a bug ends the run without a report: there is no errored stage
        skipped=str(sum(1 for s in stages if s.skipped)),
        time=_seconds(sum(s.ms or 0.0 for s in stages) / 1000),
        timestamp=started.astimezone(UTC).isoformat(timespec="seconds"),
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("server_name", report.target.server_name),
        ("verified", str(report.verified).lower()),
        ("exit_code", str(report.exit_code)),
    ):
        ET.SubElement(properties, "property", name=key, value=xml_text(value))
    for stage in stages:
        suite.append(_case(report, target, stage))
    if report.warnings:
        out = ET.SubElement(suite, "system-out")
        out.text = xml_text(
            "\n".join(f"warning {w.code}: {w.message}" for w in report.warnings) + "\n"
        )
    return suite


def _case(report: ProbeReport, target: str, stage: StageResult) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=xml_text(target),
        name=str(stage.name),
        time=_seconds((stage.ms or 0.0) / 1000),
    )
    error = report.error
    if stage.skipped:
        after = f" after {error.stage} failed" if error is not None else ""
        ET.SubElement(case, "skipped", message=f"skipped{after}")
    elif not stage.ok and error is not None:
        failure = ET.SubElement(
            case,
            "failure",
            type=str(error.kind),
            message=xml_text(error.message)[:_MESSAGE_BUDGET],
        )
        failure.text = xml_text(error.hint)
    elif stage.detail:
        out = ET.SubElement(case, "system-out")
        out.text = xml_text(stage.detail)
    return case


def _seconds(value: float) -> str:
    return f"{value:.3f}"
