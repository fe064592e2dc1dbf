"""``probe inspect`` on files and live servers, and ``probe bundle`` on a CA file."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from mqtt_tls_probe.dev.harness import BrokerHandle
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca

from .helpers import probe, probe_json
from .servers import free_port


def test_inspect_a_pem_file_with_several_certificates(pki: PkiFiles) -> None:
    code, doc = probe_json("inspect", str(pki.server_cert))
    assert code == 0
    assert doc["origin"] == "file"
    leaf, ca = doc["certificates"]
    assert leaf["sans"] == ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    assert leaf["extended_key_usage"] == ["serverAuth"]
    assert ca["key_usage"] == ["keyCertSign"]
    assert ca["basic_constraints"] == "CA:TRUE (critical)"
    assert ca["signature_algorithm"] == "ecdsa-with-SHA256"
    assert ca["self_signed"] is True
    assert leaf["aki"] == ca["ski"]
    assert [f["code"] for f in ca["findings"]] == ["quickstart_ca"]


def test_inspect_a_der_file(tmp_path: Path) -> None:
    ca = create_root_ca("DER CA")
    path = tmp_path / "ca.der"
    path.write_bytes(ca.certificate.public_bytes(Encoding.DER))
    result = probe("inspect", str(path))
    assert result.exit_code == 0
    assert "[0] CN=DER CA" in result.stdout
    assert "key         EC P-256, signed with ecdsa-with-SHA256" in result.stdout


def test_inspect_a_file_without_certificates(tmp_path: Path, pki: PkiFiles) -> None:
    code, doc = probe_json("inspect", str(pki.server_key))
    assert code == 3
    assert doc["error"]["kind"] == "trust_bundle_invalid"
    assert "private key" in doc["error"]["message"]


def test_inspect_a_live_server(harness: BrokerHandle) -> None:
    code, doc = probe_json("inspect", harness.address)
    assert code == 0
    assert doc["origin"] == "server"
    assert len(doc["certificates"]) == 2
    assert doc["tls"]["version"].startswith("TLSv1.")
    assert doc["warnings"] == []
    # --server-name applies: a name the certificate lacks is pointed out.
    code, doc = probe_json("inspect", harness.address, "--server-name", "aio-broker")
    assert code == 0
    assert [w["code"] for w in doc["warnings"]] == ["hostname_mismatch"]


def test_inspect_a_closed_port() -> None:
    code, doc = probe_json("inspect", f"127.0.0.1:{free_port()}")
    assert code == 4
    assert doc["error"]["kind"] == "connection_refused"


def test_bundle_from_a_file(pki: PkiFiles, tmp_path: Path) -> None:
    out = tmp_path / "copy.crt"
    code, doc = probe_json("bundle", "--ca-file", str(pki.ca_cert), "--out", str(out))
    assert code == 0
    assert doc["source"] == "file"
    [ca] = doc["certificates"]
    assert ca["is_ca"] is True
    assert out.read_bytes() == pki.ca_cert.read_bytes()
    pem = probe("bundle", "--ca-file", str(pki.ca_cert), "--pem")
    assert pem.stdout == pki.ca_cert.read_text()
    text = probe("bundle", "--ca-file", str(pki.ca_cert))
    assert "not for production" in text.stdout
    assert "days left" in text.stdout


def test_bundle_pem_with_json_output_is_a_usage_error(pki: PkiFiles) -> None:
    """--pem prints PEM: with --output json stdout would hold no JSON object."""
    code, doc = probe_json("bundle", "--ca-file", str(pki.ca_cert), "--pem")
    assert code == 2
    assert doc["error"]["kind"] == "usage"
