"""The renderers of ``--trace`` and ``probe tls``, from typed reports (no server)."""

from __future__ import annotations

import json
from dataclasses import replace

from mqtt_tls_probe.core.tls_messages import TraceEvent
from mqtt_tls_probe.model import (
    AlpnBehaviour,
    CipherSuites,
    ClientCertificatePolicy,
    FindingCode,
    RatedFinding,
    ResumptionInfo,
    Severity,
    SuiteInfo,
    Target,
    TlsInfo,
    TlsScanReport,
)
from mqtt_tls_probe.output import OutputFormat, render
from mqtt_tls_probe.output.trace_text import trace_lines

from .factories import cert, passing_report

HELLO = TraceEvent(
    "sent",
    "ClientHello",
    "TLSv1.3",
    512,
    0.25,
    {"versions": ("TLSv1.3", "TLSv1.2"), "groups": tuple(f"g{i}" for i in range(10))},
)
ALERT = TraceEvent(
    "received", "Alert", "TLSv1.3", 2, 3.5, {"level": "fatal", "description": "unknown_ca"}
)


def test_trace_lines_say_when_which_way_what_and_the_fields() -> None:
    first, second = trace_lines([HELLO, ALERT])
    assert first.startswith(" " * 8)
    assert "0.2 ms -> ClientHello TLSv1.3   512 B  versions=TLSv1.3,TLSv1.2" in first
    assert "groups=g0,g1,g2,g3,g4,g5,+4 more" in first  # cut in text, whole in JSON
    assert "3.5 ms <- Alert       TLSv1.3     2 B  level=fatal  description=unknown_ca" in second
    assert trace_lines([]) == [" " * 8 + "(no TLS message was recorded)"]


def test_peer_text_cannot_move_the_cursor() -> None:
    hostile = replace(HELLO, fields={"server_name": "evil\x1b[2J\rname\x85"})
    [line] = trace_lines([hostile])
    assert "\x1b" not in line
    assert "\r" not in line
    assert "evil\\x1b[2J\\rname\\x85" in line


def test_connect_json_adds_trace_only_when_present() -> None:
    report = passing_report()
    assert report.tls is not None
    plain = json.loads(render(report, OutputFormat.JSON))
    assert set(plain["tls"]) == {"version", "cipher", "alpn"}
    traced = report._replace(tls=report.tls._replace(trace=(HELLO, ALERT)))
    document = json.loads(render(traced, OutputFormat.JSON))
    assert document["tls"]["trace"][0] == {
        "direction": "sent",
        "type": "ClientHello",
        "version": "TLSv1.3",
        "size": 512,
        "ms": 0.25,
        "fields": {"versions": ["TLSv1.3", "TLSv1.2"], "groups": [f"g{i}" for i in range(10)]},
    }
    text = render(traced, OutputFormat.TEXT).splitlines()
    tls_line = next(i for i, line in enumerate(text) if "PASS  tls" in line)
    assert "-> ClientHello" in text[tls_line + 1]
    assert "<- Alert" in text[tls_line + 2]
    assert "PASS  verify" in text[tls_line + 3]
    assert TlsInfo(None, None, None).trace is None


def _scan_report() -> TlsScanReport:
    suite = SuiteInfo(
        "AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", 0x2F, "RSA", "RSA", False, True, False
    )
    return TlsScanReport(
        target=Target("broker", 8883, "broker"),
        openssl="OpenSSL 3.0.19",
        versions={"TLSv1.0": True, "TLSv1.1": None, "TLSv1.2": True, "TLSv1.3": False},
        cipher_suites=CipherSuites((suite,), 89, None, None),
        alpn=AlpnBehaviour("selected", "refused", "probe-unknown/1"),
        client_certificate=ClientCertificatePolicy(True, False, ("CN=Device CA",)),
        resumption=ResumptionInfo("TLSv1.2", True, 300, False),
        chain=(cert(),),
        findings=(RatedFinding(FindingCode.TLS10_ACCEPTED, Severity.HIGH, "TLSv1.0 is accepted."),),
        notes=("TLSv1.1 was not tried.",),
        handshakes=97,
    )


def test_tls_scan_text() -> None:
    out = render(_scan_report(), OutputFormat.TEXT)
    assert out.startswith("probe tls broker:8883 (server name broker; 97 handshakes; OpenSSL")
    assert "TLSv1.0 yes   TLSv1.1 not tried   TLSv1.2 yes   TLSv1.3 no" in out
    assert "1 of 89 suites accepted\n" in out
    assert "AES128-SHA  TLS_RSA_WITH_AES_128_CBC_SHA  (no forward secrecy, CBC)" in out
    assert "suite chosen: not negotiated" in out
    assert "mqtt: selected; probe-unknown/1: refused" in out
    assert "requested, optional; CAs it names: CN=Device CA" in out
    assert "TLSv1.2: tickets issued (lifetime 300 s); resumed handshake refused" in out
    assert "  HIGH    tls1_0_accepted  TLSv1.0 is accepted." in out
    assert "notes:\n  TLSv1.1 was not tried." in out
    assert "[0] CN=aio-broker  EC P-256, until 2026-12-20T00:00:00Z (20 days left)" in out
    assert "SHA-256" not in out
    assert "SHA-256" in render(_scan_report(), OutputFormat.TEXT, verbose=True)


def test_tls_scan_json() -> None:
    document = json.loads(render(_scan_report(), OutputFormat.JSON))
    assert document["versions"]["TLSv1.1"] is None
    assert document["cipher_suites"]["TLSv1.2"]["accepted"][0]["code"] == "0x002f"
    assert document["findings"] == [
        {"code": "tls1_0_accepted", "severity": "high", "message": "TLSv1.0 is accepted."}
    ]
    assert document["exit_code"] == 0
    assert document["ok"] is True
    assert set(document) == {
        "ok", "target", "openssl", "handshakes", "versions", "cipher_suites", "alpn",
        "client_certificate", "resumption", "chain", "findings", "notes", "error", "exit_code",
    }  # fmt: skip
