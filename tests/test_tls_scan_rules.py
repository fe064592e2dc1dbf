"""The decisions of ``probe tls`` (``core.tls_scan``), one answer at a time."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mqtt_tls_probe.core import tls_scan
from mqtt_tls_probe.core.tls_messages import TraceEvent
from mqtt_tls_probe.core.tls_scan import Answer
from mqtt_tls_probe.model import CertInfo, SuiteInfo

from .factories import cert

GCM = 0xC02B
CBC = 0xC009
SERVER_HELLO_12 = Answer(
    tried=True, version="TLSv1.2", suite="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", traced=True
)


def _request(*names: str) -> TraceEvent:
    return TraceEvent(
        "received", "CertificateRequest", "TLSv1.2", 40, 1.0, {"certificate_authorities": names}
    )


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (SERVER_HELLO_12, True),  # the ServerHello decides, whatever followed
        (Answer(tried=True, alert="protocol_version", traced=True), False),
        (Answer(tried=False, reason="NO_PROTOCOLS_AVAILABLE"), None),
        (Answer(tried=False, network_error="refused"), None),
        (Answer(tried=True, version="TLSv1.3", traced=True), False),
    ],
)
def test_version_accepted(answer: Answer, verdict: bool | None) -> None:
    assert tls_scan.version_accepted("1.2", answer) is verdict


def test_suite_accepted_by_code_when_traced_and_by_name_when_not() -> None:
    assert tls_scan.suite_accepted("ECDHE-ECDSA-AES128-GCM-SHA256", GCM, SERVER_HELLO_12)
    assert not tls_scan.suite_accepted("ECDHE-ECDSA-AES128-SHA", CBC, SERVER_HELLO_12)
    untraced = Answer(tried=True, completed=True, version="TLSv1.2", suite="AES128-SHA")
    assert tls_scan.suite_accepted("AES128-SHA", 0x2F, untraced)
    refused = Answer(tried=True, alert="handshake_failure", traced=True)
    assert tls_scan.suite_accepted("AES128-SHA", 0x2F, refused) is False
    assert tls_scan.suite_accepted("AES128-SHA", 0x2F, Answer(tried=False)) is None


def test_server_preference() -> None:
    gcm = SERVER_HELLO_12
    cbc = replace(gcm, suite="TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
    assert tls_scan.server_preference(GCM, CBC, [gcm, gcm]) is True  # same choice both ways
    assert tls_scan.server_preference(GCM, CBC, [gcm, cbc]) is False  # the client's first
    assert tls_scan.server_preference(GCM, CBC, [cbc, gcm]) is None  # neither rule
    assert tls_scan.server_preference(GCM, CBC, [gcm, Answer(tried=True)]) is None


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        (Answer(tried=True, completed=True, alpn="mqtt"), "selected"),
        (Answer(tried=True, completed=True), "ignored"),
        (Answer(tried=True, alert="no_application_protocol", traced=True), "refused"),
        (Answer(tried=True, reason="TLSV1_ALERT_NO_APPLICATION_PROTOCOL"), "refused"),
        (Answer(tried=True, completed=True, alpn="other"), "selected other"),
        (Answer(tried=True, alert="handshake_failure"), None),
    ],
)
def test_alpn_verdicts(answer: Answer, verdict: str | None) -> None:
    assert tls_scan.alpn_verdict("mqtt", answer) == verdict


def test_client_certificate_policy() -> None:
    plain = Answer(tried=True, completed=True, traced=True)
    assert tls_scan.client_certificate_policy(plain, []).requested is False
    untraced = Answer(tried=True, completed=True)
    assert tls_scan.client_certificate_policy(untraced, []).requested is None
    asked = (_request("CN=Device CA"),)
    required = Answer(tried=True, alert="certificate_required", events=asked, traced=True)
    policy = tls_scan.client_certificate_policy(required, [])
    assert (policy.requested, policy.required, policy.authorities) == (
        True,
        True,
        ("CN=Device CA",),
    )
    optional = Answer(tried=True, completed=True, events=asked, traced=True)
    assert tls_scan.client_certificate_policy(optional, []).required is False
    elsewhere = tls_scan.client_certificate_policy(plain, [required])
    assert (elsewhere.requested, elsewhere.required) == (True, None)


def _codes(
    versions: dict[str, bool | None] | None = None,
    suites: tuple[SuiteInfo, ...] = (),
    chain: tuple[CertInfo, ...] = (),
) -> dict[str, str]:
    every: dict[str, bool | None] = {"TLSv1.0": False, "TLSv1.1": False}
    every |= {"TLSv1.2": True, "TLSv1.3": True}
    every.update(versions or {})
    return {f.code: f.severity for f in tls_scan.findings(every, suites, chain)}


def test_findings_and_their_severities() -> None:
    assert _codes() == {}
    assert _codes(versions={"TLSv1.0": True, "TLSv1.3": False}) == {
        "tls1_0_accepted": "high",
        "no_tls1_3": "low",
    }
    assert _codes(versions={"TLSv1.2": False, "TLSv1.3": False}) == {"no_handshake": "high"}
    assert _codes(versions={"TLSv1.0": None, "TLSv1.3": None}) == {}  # not tried: no finding
    static = tls_scan.describe_suite("AES128-SHA", 0x2F, "RSA", "RSA", "aes-128-cbc")
    anonymous = tls_scan.describe_suite("ADH-AES128-SHA", 0x34, "DHE", "NULL", "aes-128-cbc")
    null = tls_scan.describe_suite("NULL-SHA", 0x02, "RSA", "RSA", None)
    assert _codes(suites=(static,)) == {"no_forward_secrecy": "medium", "cbc_suites": "low"}
    assert _codes(suites=(anonymous, null)) == {"insecure_suites": "high"}
    assert _codes(chain=(cert(days_left=40),)) == {}
    assert _codes(chain=(cert(days_left=20),)) == {"chain_expires_soon": "low"}
    assert _codes(chain=(cert(days_left=3),)) == {"chain_expires_soon": "medium"}
    assert _codes(chain=(cert(days_left=-1),)) == {"chain_expired": "high"}


def test_findings_come_worst_first() -> None:
    static = tls_scan.describe_suite("AES128-SHA", 0x2F, "RSA", "RSA", "aes-128-cbc")
    found = tls_scan.findings(
        {"TLSv1.0": True, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": False}, [static], []
    )
    assert [f.severity for f in found] == ["high", "medium", "low", "low"]
