"""The order of the verify checks decides the kind when a chain has several problems.

Pure: certificates from the project's PKI code, no sockets. The end-to-end
tests (test_verify_failures.py) prove each kind against a real broker.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from mqtt_tls_probe.core.verify import explain_rejection, find_problem, findings
from mqtt_tls_probe.dev.pki import (
    CertAndKey,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
)
from mqtt_tls_probe.errors import ErrorKind
from mqtt_tls_probe.model import Finding, FindingCode

from .brokers import harness_serving
from .helpers import probe_json, write_pem

# Ahead of the clock: certificates made later in the run start one minute in the
# past, and must be valid at NOW however long the suite takes to get here.
NOW = datetime.now(UTC) + timedelta(minutes=10)
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs() -> None:
    """Date the checks when each test runs, not when the module was collected.

    Certificates made in a test start a minute before it; collection can be
    minutes earlier in a long suite, and they would then be "not yet valid".
    """
    global NOW  # noqa: PLW0603 (the tests' shared clock, reset before each)
    NOW = datetime.now(UTC)


def _kind(chain: list[CertAndKey], anchors: list[CertAndKey], name: str = "localhost") -> str:
    certs: list[x509.Certificate] = [c.certificate for c in chain]
    trusted = [a.certificate for a in anchors]
    return str(explain_rejection(certs, trusted, name, NOW).kind)


@pytest.fixture(scope="module")
def ca() -> CertAndKey:
    return create_root_ca()


def test_precedence(ca: CertAndKey) -> None:
    """Rule of verify.py, case by case: the earlier problem names the failure."""
    expired = issue_server_certificate(None, ["elsewhere"], not_before=NOW - 9 * DAY, days=2)
    # 1. validity first: expired, self-signed and the wrong name at once.
    assert _kind([expired], [ca]) == ErrorKind.CERT_EXPIRED
    # 1. not yet valid beats a rotated CA.
    rotated = create_root_ca()
    future = issue_server_certificate(rotated, ["localhost"], not_before=NOW + DAY)
    assert _kind([future, rotated], [ca]) == ErrorKind.CERT_NOT_YET_VALID
    # 2. self-signed beats the wrong name.
    assert (
        _kind([issue_server_certificate(None, ["elsewhere"])], [ca]) == ErrorKind.SELF_SIGNED_LEAF
    )
    # 3a. an expired trusted CA beats the wrong name.
    old = create_root_ca(not_before=NOW - 40 * DAY)
    leaf = issue_server_certificate(old, ["elsewhere"], not_before=NOW - DAY, not_after=NOW + DAY)
    assert _kind([leaf, old], [old]) == ErrorKind.CA_EXPIRED
    # 3b. a CA that may not sign beats the wrong name.
    no_sign = create_root_ca("No Sign", key_cert_sign=False)
    assert (
        _kind([issue_server_certificate(no_sign, ["elsewhere"])], [no_sign]) == ErrorKind.CA_INVALID
    )
    # 3c. an intermediate trusted without its root.
    intermediate = create_intermediate_ca(ca, "Intermediate")
    leaf = issue_server_certificate(intermediate, ["localhost"])
    assert _kind([leaf, intermediate], [intermediate]) == ErrorKind.UNKNOWN_CA
    # 3d. then the name.
    assert (
        _kind([issue_server_certificate(ca, ["elsewhere"]), ca], [ca])
        == ErrorKind.HOSTNAME_MISMATCH
    )
    # 4a. a rotated CA beats a missing intermediate, with or without the root sent.
    assert _kind([issue_server_certificate(rotated, ["x"])], [ca]) == ErrorKind.CA_ROTATED
    # 4b. only the leaf, its issuer nowhere.
    assert _kind([leaf], [ca]) == ErrorKind.INCOMPLETE_CHAIN
    # 4c. a chain that leads elsewhere.
    other = create_root_ca("Other")
    assert (
        _kind([issue_server_certificate(other, ["localhost"]), other], [ca]) == ErrorKind.UNKNOWN_CA
    )


def test_without_the_chain_openssl_decides() -> None:
    """When the chain could not be read, OpenSSL's verify code names the kind."""
    assert explain_rejection([], [], "h", NOW, verify_code=10).kind == ErrorKind.CERT_EXPIRED
    assert explain_rejection([], [], "h", NOW, verify_code=20).kind == ErrorKind.UNKNOWN_CA
    error = explain_rejection([], [], "h", NOW, verify_code=62, verify_message="Hostname mismatch")
    assert error.kind == ErrorKind.HOSTNAME_MISMATCH
    assert "verify error 62" in error.message


def test_wildcards_and_ip_names(ca: CertAndKey) -> None:
    names = ["*.azure-iot-operations.svc", "*.cluster", "10.0.0.5"]
    leaf = issue_server_certificate(ca, names).certificate
    anchors = [ca.certificate]
    assert find_problem([leaf], anchors, "aio-broker.azure-iot-operations.svc", NOW) is None
    assert find_problem([leaf], anchors, "10.0.0.5", NOW) is None
    # As OpenSSL: one label per star, no star over a single-label suffix, IPs by value.
    for wrong in (
        "a.b.azure-iot-operations.svc",
        "azure-iot-operations.svc",
        "x.cluster",
        "10.0.0.6",
    ):
        problem = find_problem([leaf], anchors, wrong, NOW)
        assert problem is not None
        assert problem.kind == ErrorKind.HOSTNAME_MISMATCH


def test_a_chain_openssl_accepts_is_never_failed_only_warned(tmp_path: Path) -> None:
    """cryptography is stricter than OpenSSL: its objections are warnings, not failures."""
    plain = create_root_ca("Plain openssl req CA", with_key_usage=False)
    chain = [issue_server_certificate(plain, ["localhost", "127.0.0.1"]), plain]
    write_pem(tmp_path / "ca.crt", plain)
    with harness_serving(tmp_path / "broker", chain, plain) as handle:
        code, doc = probe_json("connect", handle.address, "--ca-file", str(tmp_path / "ca.crt"))
    assert code == 0
    strict = [w for w in doc["warnings"] if w["code"] == "strict_verification"]
    assert len(strict) == 1
    assert "OpenSSL accepts this chain" in strict[0]["message"]
    # The twin, with real anchors so that the strict verifier runs: a chain both accept
    # carries no such warning, and the same leaf under the plain CA does.
    quickstart = create_root_ca()
    good = [issue_server_certificate(quickstart, ["h"]).certificate]
    assert not _strict(findings(good, [quickstart.certificate], "h", NOW))
    plain_leaf = [issue_server_certificate(plain, ["h"]).certificate]
    assert _strict(findings(plain_leaf, [plain.certificate], "h", NOW))


def _strict(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.code == FindingCode.STRICT_VERIFICATION]
