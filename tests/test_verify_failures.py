"""Certificate verification: every verify kind, each against the harness broker serving
certificates made for the scenario, with OpenSSL's own verdict checked alongside."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.adapters.tls_trace import trace_available
from mqtt_tls_probe.aio import QUICKSTART_CA_CN
from mqtt_tls_probe.dev.pki import (
    CertAndKey,
    create_intermediate_ca,
    create_root_ca,
    issue_server_certificate,
)

from .brokers import harness_serving
from .helpers import probe, probe_json, stage, write_pem
from .servers import TcpServer, server_context, tls_handler, write_chain

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
LOCAL = ["localhost", "127.0.0.1"]


@dataclass
class Outcome:
    code: int
    doc: dict[str, Any]
    openssl_accepts: bool

    @property
    def kind(self) -> str | None:
        return self.doc["error"]["kind"] if self.doc["error"] else None


def _openssl_accepts(port: int, ca_file: Path, server_name: str) -> bool:
    """OpenSSL's verdict on its own: a verifying handshake with the ssl module."""
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname=server_name),
        ):
            return True
    except ssl.SSLCertVerificationError:
        return False


def run_scenario(
    tmp_path: Path,
    chain: Sequence[CertAndKey],
    trusted: Sequence[CertAndKey],
    *args: str,
    server_name: str = "127.0.0.1",
) -> Outcome:
    tmp_path.mkdir(parents=True, exist_ok=True)
    ca_file = write_pem(tmp_path / "trusted.crt", *trusted)
    with harness_serving(tmp_path / "broker", chain, trusted[0]) as handle:
        code, doc = probe_json("connect", handle.address, "--ca-file", str(ca_file), *args)
        verdict = _openssl_accepts(handle.port, ca_file, server_name)
    outcome = Outcome(code, doc, verdict)
    # The classification always agrees with OpenSSL's pass/fail verdict.
    assert (stage(doc, "verify")["ok"]) == verdict, doc["error"]
    return outcome


@pytest.fixture(scope="module")
def ca() -> CertAndKey:
    return create_root_ca()


def test_trusted_chain_passes(tmp_path: Path, ca: CertAndKey) -> None:
    outcome = run_scenario(tmp_path, [issue_server_certificate(ca, LOCAL), ca], [ca])
    assert outcome.code == 0
    assert outcome.openssl_accepts


def test_expired_server_certificate(tmp_path: Path, ca: CertAndKey) -> None:
    leaf = issue_server_certificate(ca, LOCAL, not_before=NOW - 10 * DAY, days=5)
    outcome = run_scenario(tmp_path, [leaf, ca], [ca])
    assert outcome.code == 6
    assert outcome.kind == "cert_expired"
    message = outcome.doc["error"]["message"]
    assert "CN=localhost" in message
    assert (NOW - 5 * DAY).strftime("%Y-%m-%d") in message  # its end date
    assert "the clock here says" in message


def test_server_certificate_not_yet_valid(tmp_path: Path, ca: CertAndKey) -> None:
    leaf = issue_server_certificate(ca, LOCAL, not_before=NOW + 2 * DAY, days=5)
    outcome = run_scenario(tmp_path, [leaf, ca], [ca])
    assert outcome.kind == "cert_not_yet_valid"
    assert "not valid yet" in outcome.doc["error"]["message"]


def test_expired_ca(tmp_path: Path) -> None:
    old = create_root_ca(not_before=NOW - 40 * DAY, days=30)
    leaf = issue_server_certificate(old, LOCAL, not_before=NOW - DAY, not_after=NOW + 20 * DAY)
    outcome = run_scenario(tmp_path, [leaf, old], [old])
    assert outcome.kind == "ca_expired"
    assert QUICKSTART_CA_CN in outcome.doc["error"]["message"]
    assert "30 days" in outcome.doc["error"]["hint"]


def test_rotated_ca_same_name_new_key(tmp_path: Path, ca: CertAndKey) -> None:
    rotated = create_root_ca()  # the same quickstart subject, a new key
    outcome = run_scenario(tmp_path, [issue_server_certificate(rotated, LOCAL), rotated], [ca])
    assert outcome.kind == "ca_rotated"
    assert "stale" in outcome.doc["error"]["message"]
    assert "probe bundle" in outcome.doc["error"]["hint"]


def test_rotated_ca_when_the_server_sends_only_its_leaf(tmp_path: Path, ca: CertAndKey) -> None:
    rotated = create_root_ca()
    outcome = run_scenario(tmp_path, [issue_server_certificate(rotated, LOCAL)], [ca])
    assert outcome.kind == "ca_rotated"


def test_unrelated_ca(tmp_path: Path) -> None:
    internal = create_root_ca("aio-broker-internal-ca")
    served = create_root_ca()
    outcome = run_scenario(tmp_path, [issue_server_certificate(served, LOCAL), served], [internal])
    assert outcome.kind == "unknown_ca"
    assert "aio-broker-internal-ca" in outcome.doc["error"]["message"]
    assert "aio-ca-trust-bundle-test-only" in outcome.doc["error"]["hint"]


def test_intermediate_omitted_then_sent(tmp_path: Path, ca: CertAndKey) -> None:
    intermediate = create_intermediate_ca(ca, "Broker Intermediate CA")
    leaf = issue_server_certificate(intermediate, LOCAL)
    omitted = run_scenario(tmp_path / "omitted", [leaf], [ca])
    assert omitted.kind == "incomplete_chain"
    assert "intermediate" in omitted.doc["error"]["hint"]
    assert "Broker Intermediate CA" in omitted.doc["error"]["hint"]
    sent = run_scenario(tmp_path / "sent", [leaf, intermediate], [ca])
    assert sent.code == 0
    assert len(sent.doc["chain"]) == 2


def test_hostname_mismatch_names_the_broker_service(tmp_path: Path, ca: CertAndKey) -> None:
    names = ["aio-broker", "aio-broker.azure-iot-operations", "10.0.0.9"]
    chain = [issue_server_certificate(ca, names), ca]
    outcome = run_scenario(tmp_path / "a", chain, [ca])
    assert outcome.kind == "hostname_mismatch"
    error = outcome.doc["error"]
    assert "DNS:aio-broker" in error["message"]
    assert "IP:10.0.0.9" in error["message"]
    assert "--server-name aio-broker" in error["hint"]
    # The twin: verifying against the name the certificate lists passes, chain fully checked.
    twin = run_scenario(
        tmp_path / "b", chain, [ca], "--server-name", "aio-broker", server_name="aio-broker"
    )
    assert twin.code == 0
    assert twin.doc["target"]["server_name"] == "aio-broker"


def test_self_signed_leaf(tmp_path: Path, ca: CertAndKey) -> None:
    leaf = issue_server_certificate(None, LOCAL)
    outcome = run_scenario(tmp_path / "a", [leaf], [ca])
    assert outcome.kind == "self_signed_leaf"
    # The twin: trusting that very certificate makes it pass.
    assert run_scenario(tmp_path / "b", [leaf], [leaf]).code == 0


def test_trusted_ca_without_key_cert_sign(tmp_path: Path) -> None:
    no_sign = create_root_ca("No Sign CA", key_cert_sign=False)
    outcome = run_scenario(tmp_path, [issue_server_certificate(no_sign, LOCAL)], [no_sign])
    assert outcome.kind == "ca_invalid"
    assert "keyCertSign" in outcome.doc["error"]["message"]


def test_trusted_certificate_that_is_not_a_ca(tmp_path: Path) -> None:
    not_ca = create_root_ca("Not A CA", ca=False)
    outcome = run_scenario(tmp_path, [issue_server_certificate(not_ca, LOCAL)], [not_ca])
    assert outcome.kind == "ca_invalid"
    assert "not a CA" in outcome.doc["error"]["message"]


def test_expiring_ca_and_quickstart_are_warnings_on_success(tmp_path: Path) -> None:
    soon = create_root_ca(days=3)
    outcome = run_scenario(tmp_path, [issue_server_certificate(soon, LOCAL), soon], [soon])
    assert outcome.code == 0
    codes = [w["code"] for w in outcome.doc["warnings"]]
    assert "expires_soon" in codes
    assert "quickstart_ca" in codes


def test_insecure_connects_and_says_unverified(tmp_path: Path, ca: CertAndKey) -> None:
    chain = [issue_server_certificate(ca, ["aio-broker"]), ca]
    ca_file = tmp_path / "ca.crt"
    write_pem(ca_file, ca)
    with harness_serving(tmp_path / "broker", chain, ca) as handle:
        code, doc = probe_json("connect", handle.address, "--insecure")
        text = probe("connect", handle.address, "--insecure", "--ca-file", str(ca_file))
    assert code == 0
    assert doc["verified"] is False
    assert doc["trust"]["source"] == "none"
    assert len(doc["chain"]) == 2  # the chain is still shown
    assert any("hostname_mismatch" in w["message"] for w in doc["warnings"])
    assert "UNVERIFIED" in text.stdout
    assert "WARN  verify" in text.stdout
    assert "hostname_mismatch" in text.stdout


def test_verbose_text_shows_chain_and_trust_bundle(tmp_path: Path, ca: CertAndKey) -> None:
    chain = [issue_server_certificate(ca, LOCAL), ca]
    write_pem(tmp_path / "ca.crt", ca)
    with harness_serving(tmp_path / "broker", chain, ca) as handle:
        result = probe("connect", handle.address, "--ca-file", str(tmp_path / "ca.crt"), "-v")
    assert result.exit_code == 0
    assert "server chain, as sent (leaf first):" in result.stdout
    assert "trust bundle (" in result.stdout
    assert result.stdout.count("SHA-256") == 3  # leaf, CA as sent, CA as trusted
    assert "SANs        DNS:localhost, IP:127.0.0.1" in result.stdout


def test_no_byte_of_mqtt_crosses_a_connection_that_failed_verification(
    tmp_path: Path, ca: CertAndKey
) -> None:
    """Credentials only ever cross a verified connection; the chain read sends nothing."""
    received: list[bytes] = []

    def record(conn: socket.socket, stopping: threading.Event) -> None:
        del stopping
        conn.settimeout(2)
        try:
            received.append(conn.recv(4096))
        except (OSError, ssl.SSLError):
            received.append(b"")

    files = write_chain(tmp_path, [issue_server_certificate(ca, ["aio-broker"]), ca])
    write_pem(tmp_path / "ca.crt", ca)
    (tmp_path / "password").write_text("s3cret-password\n")
    with TcpServer(tls_handler(server_context(*files), after=record)) as server:
        code, doc = probe_json(
            "connect",
            server.address,
            "--ca-file",
            str(tmp_path / "ca.crt"),
            "--username",
            "operator",
            "--password-file",
            str(tmp_path / "password"),
        )
        accepted = server.accepted
    assert code == 6
    assert doc["error"]["kind"] == "hostname_mismatch"
    assert [c["subject"] for c in doc["chain"]] == ["CN=aio-broker", f"CN={QUICKSTART_CA_CN}"]
    if trace_available():
        # One connection: the verifying handshake, which the client aborts; the chain
        # comes from the server's Certificate message in its trace.
        assert accepted == 1
        assert received == []
    else:
        # Then a second one reads the chain, and nothing at all is sent over it.
        assert accepted == 2
        assert received == [b""]
