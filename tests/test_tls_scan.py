"""``probe tls`` against real servers: what a TLS endpoint accepts, checked with ``s_client``.

Servers: mosquitto on TLS 1.2 and 1.3 (its defaults), mosquitto with a restricted cipher
list (its ``ciphers`` option), mosquitto requiring client certificates, ``openssl
s_server`` allowing TLS 1.0 at security level 0, and one offering every suite. For each,
a few questions are asked again with ``openssl s_client`` and the answers must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.adapters.tls_trace import trace_available
from mqtt_tls_probe.dev.pki import PkiFiles

from .brokers import mosquitto
from .helpers import probe, probe_json
from .openssl_server import needs_openssl, openssl_server, self_signed
from .servers import free_port

OPENSSL = shutil.which("openssl")
pytestmark = [
    needs_openssl,
    pytest.mark.skipif(not trace_available(), reason="probe tls reads answers from the trace"),
]
LEGACY = "ALL:@SECLEVEL=0"


def s_client(port: int, *options: str) -> str | None:
    """The suite ``openssl s_client`` negotiates with these options, or None if it fails."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-brief", *options],
        input=b"",
        capture_output=True,
        timeout=20,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    for line in output.splitlines():
        if line.startswith("Ciphersuite:"):
            return line.split(":", 1)[1].strip()
    return None


def _scan(port: int, *args: str) -> dict[str, Any]:
    code, doc = probe_json("tls", f"127.0.0.1:{port}", "--timeout", "5", *args)
    assert code == 0, doc["error"]
    return doc


def _accepted(doc: dict[str, Any]) -> list[str]:
    return [s["name"] for s in doc["cipher_suites"]["TLSv1.2"]["accepted"]]


def _findings(doc: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in doc["findings"]}


@pytest.fixture
def listener(pki: PkiFiles) -> list[str]:
    return [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]


@pytest.mark.mosquitto
def test_mosquitto_with_tls12_and_13(listener: list[str], tmp_path: Path) -> None:
    with mosquitto(tmp_path, listener) as port:
        doc = _scan(port)
        agree = {
            "TLSv1.1": s_client(port, "-tls1_1", "-cipher", LEGACY),
            "TLSv1.2": s_client(port, "-tls1_2"),
            "TLSv1.3": s_client(port, "-tls1_3"),
        }
        accepted_gcm = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
        refused_rsa = s_client(port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert doc["versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert {version: suite is not None for version, suite in agree.items()} == {
        "TLSv1.1": False,
        "TLSv1.2": True,
        "TLSv1.3": True,
    }
    accepted = _accepted(doc)
    assert accepted_gcm == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert accepted_gcm in accepted
    assert refused_rsa is None
    assert "ECDHE-RSA-AES128-GCM-SHA256" not in accepted
    # Its certificate is ECDSA: only ECDSA-authenticated suites can be accepted.
    assert all("-ECDSA-" in name for name in accepted)
    assert doc["cipher_suites"]["TLSv1.2"]["tried"] >= 80
    assert doc["cipher_suites"]["TLSv1.3"]["chosen"] == agree["TLSv1.3"]
    assert doc["alpn"] == {
        "mqtt": "ignored",
        "unknown": "ignored",
        "unknown_protocol": "probe-unknown/1",
    }
    assert doc["client_certificate"] == {
        "requested": False,
        "required": False,
        "certificate_authorities": [],
    }
    assert doc["resumption"] == {
        "version": "TLSv1.3",
        "tickets": True,
        "ticket_lifetime_s": 7200,
        "resumed": True,
    }
    assert [c["subject"] for c in doc["chain"]] == [
        "CN=localhost",
        "CN=Azure IoT Operations Quickstart Root CA - Not for Production",
    ]
    findings = _findings(doc)
    assert findings["cbc_suites"] == "low"  # OpenSSL's DEFAULT list keeps the CBC suites
    assert findings["chain_expires_soon"] == "low"  # the quickstart profile: 30 days
    assert "tls1_0_accepted" not in findings
    assert "no_tls1_3" not in findings


@pytest.mark.mosquitto
def test_mosquitto_with_a_restricted_cipher_list(listener: list[str], tmp_path: Path) -> None:
    two = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
    with mosquitto(tmp_path, [*listener, f"ciphers {two}"]) as port:
        doc = _scan(port)
        forward = s_client(port, "-tls1_2", "-cipher", two)
        backward = s_client(port, "-tls1_2", "-cipher", ":".join(reversed(two.split(":"))))
    assert sorted(_accepted(doc)) == sorted(two.split(":"))
    # The server's order, as openssl s_client sees it offering both ways.
    assert forward is not None
    assert backward is not None
    assert doc["cipher_suites"]["TLSv1.2"]["server_preference"] is (forward == backward)
    assert "cbc_suites" not in _findings(doc)
    assert doc["versions"]["TLSv1.3"] is True  # mosquitto's ciphers cover TLS 1.2 only


@pytest.mark.mosquitto
def test_mosquitto_requiring_client_certificates(
    listener: list[str], pki: PkiFiles, tmp_path: Path
) -> None:
    mtls = [*listener, f"cafile {pki.ca_cert}", "require_certificate true"]
    with mosquitto(tmp_path, mtls) as port:
        doc = _scan(port)
    assert doc["client_certificate"]["requested"] is True
    assert doc["client_certificate"]["required"] is True
    # The ServerHello decides: TLS 1.2 is accepted even though no handshake completes.
    assert doc["versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in _accepted(doc)


def test_openssl_server_names_the_client_cas_it_accepts(pki: PkiFiles) -> None:
    options = ("-Verify", "1", "-CAfile", str(pki.ca_cert))
    with openssl_server(pki.server_cert, pki.server_key, *options) as port:
        doc = _scan(port)
    assert doc["client_certificate"] == {
        "requested": True,
        "required": True,
        "certificate_authorities": [
            "CN=Azure IoT Operations Quickstart Root CA - Not for Production"
        ],
    }


def test_an_openssl_server_allowing_only_tls10(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "rsa2048")
    with openssl_server(cert, key, "-tls1", "-cipher", LEGACY) as port:
        doc = _scan(port)
        tls10 = s_client(port, "-tls1", "-cipher", LEGACY)
        tls12 = s_client(port, "-tls1_2")
    assert doc["versions"] == {
        "TLSv1.0": True,
        "TLSv1.1": False,
        "TLSv1.2": False,
        "TLSv1.3": False,
    }
    assert tls10 is not None
    assert tls12 is None
    findings = _findings(doc)
    assert findings["tls1_0_accepted"] == "high"
    assert findings["no_tls1_3"] == "low"
    assert doc["findings"][0]["severity"] == "high"  # worst first
    assert _accepted(doc) == []  # TLS 1.2 suites: none, TLS 1.2 is refused
    assert doc["chain"][0]["key"] == "RSA 2048"


def test_an_openssl_server_accepting_every_suite(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "rsa2048")
    with openssl_server(cert, key, "-cipher", LEGACY) as port:
        doc = _scan(port)
        static = s_client(port, "-tls1_2", "-cipher", "AES128-GCM-SHA256:@SECLEVEL=0")
        anonymous = s_client(port, "-tls1_2", "-cipher", "ADH-AES128-GCM-SHA256:@SECLEVEL=0")
        ecdsa = s_client(port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    accepted = _accepted(doc)
    assert static == "AES128-GCM-SHA256"
    assert static in accepted
    assert anonymous == "ADH-AES128-GCM-SHA256"
    assert anonymous in accepted
    assert ecdsa is None
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" not in accepted
    findings = _findings(doc)
    assert findings["insecure_suites"] == "high"
    assert findings["no_forward_secrecy"] == "medium"
    assert findings["cbc_suites"] == "low"
    assert findings["tls1_0_accepted"] == "high"
    assert findings["tls1_1_accepted"] == "high"
    suites = {s["name"]: s for s in doc["cipher_suites"]["TLSv1.2"]["accepted"]}
    assert suites["AES128-GCM-SHA256"]["forward_secrecy"] is False
    assert suites["AES128-GCM-SHA256"]["iana"] == "TLS_RSA_WITH_AES_128_GCM_SHA256"
    assert suites["ADH-AES128-GCM-SHA256"]["insecure"] is True


def test_a_version_the_local_openssl_cannot_offer_is_null(pki: PkiFiles, tmp_path: Path) -> None:
    """An OpenSSL configuration that forbids TLS 1.0 and 1.1: nothing is sent for them."""
    config = tmp_path / "openssl.cnf"
    config.write_text(
        "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
        "[ssl_sect]\nsystem_default = system_default_sect\n"
        "[system_default_sect]\nProtocol = ALL, -TLSv1, -TLSv1.1\n"
    )
    with openssl_server(pki.server_cert, pki.server_key) as port:
        result = subprocess.run(
            [sys.executable, "-m", "mqtt_tls_probe", "tls", f"127.0.0.1:{port}", "-o", "json"],
            env={**os.environ, "OPENSSL_CONF": str(config)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr

    doc = json.loads(result.stdout)
    assert doc["versions"] == {"TLSv1.0": None, "TLSv1.1": None, "TLSv1.2": True, "TLSv1.3": True}
    assert any("TLSv1.0 was not tried" in note for note in doc["notes"])


def test_a_server_no_client_here_can_use_is_scanned_all_the_same(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "secp256k1")
    with openssl_server(cert, key) as port:
        doc = _scan(port)
    assert doc["versions"] == {
        "TLSv1.0": False,
        "TLSv1.1": False,
        "TLSv1.2": False,
        "TLSv1.3": False,
    }
    assert _findings(doc)["no_handshake"] == "high"
    # The chain comes from the hand-made ClientHello that offers every curve.
    assert doc["chain"][0]["key"] == "EC secp256k1"


def test_exit_codes_unreachable_and_not_tls(listener: list[str], tmp_path: Path) -> None:
    code, doc = probe_json("tls", f"127.0.0.1:{free_port()}")
    assert code == 4
    assert doc["error"]["kind"] == "connection_refused"
    if shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists():
        with mosquitto(tmp_path, ["allow_anonymous true"]) as port:
            code, doc = probe_json("tls", f"127.0.0.1:{port}")
        assert code == 5
        assert doc["error"]["kind"] == "not_tls"
        assert "plain MQTT listener" in doc["error"]["message"]


@pytest.mark.mosquitto
def test_text_report(listener: list[str], tmp_path: Path) -> None:
    with mosquitto(tmp_path, listener) as port:
        result = probe("tls", f"127.0.0.1:{port}", "--server-name", "localhost")
    assert result.exit_code == 0
    out = result.stdout
    assert out.startswith(f"probe tls 127.0.0.1:{port} (server name localhost; ")
    assert "versions      TLSv1.0 no   TLSv1.1 no   TLSv1.2 yes   TLSv1.3 yes" in out
    assert "ECDHE-ECDSA-AES128-GCM-SHA256  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" in out
    assert (
        "resumption    TLSv1.3: tickets issued (lifetime 7200 s); resumed handshake accepted" in out
    )
    assert "LOW     cbc_suites" in out


@pytest.mark.mosquitto
def test_without_the_message_callback_completed_handshakes_answer(
    listener: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mqtt_tls_probe.adapters import tls_trace

    monkeypatch.setattr(tls_trace, "trace_available", lambda: False)
    with mosquitto(tmp_path, listener) as port:
        doc = _scan(port)
    assert doc["versions"] == {"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in _accepted(doc)
    assert doc["client_certificate"]["requested"] is None
    assert doc["resumption"]["resumed"] is True
    assert len(doc["chain"]) == 2  # read with the hand-made ClientHello
    assert any("Trace unavailable on this Python" in note for note in doc["notes"])
