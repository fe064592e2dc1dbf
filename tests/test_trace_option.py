"""``--trace`` on ``connect`` and ``inspect``: the handshake as it happened, on real servers."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mqtt_tls_probe.adapters import tls_trace
from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca, issue_server_certificate

from .brokers import mosquitto
from .helpers import connect_json, probe, probe_json, stage, write_pem
from .servers import TcpServer, server_context, tls_handler, write_chain

EVENT_KEYS = {"direction", "type", "version", "size", "ms", "fields"}

pytestmark = pytest.mark.skipif(
    not tls_trace.trace_available(), reason="this Python has no SSLContext._msg_callback"
)


@pytest.fixture
def broker(pki: PkiFiles, tmp_path: Path) -> object:
    listener = [f"certfile {pki.server_cert}", f"keyfile {pki.server_key}", "allow_anonymous true"]
    with mosquitto(tmp_path, listener) as port:
        yield f"127.0.0.1:{port}"


@pytest.mark.mosquitto
def test_connect_trace_json_lists_every_message_up_to_the_end_of_the_tls_stage(
    broker: str, pki: PkiFiles
) -> None:
    code, doc = connect_json(broker, pki.ca_cert, "--trace")
    assert code == 0, doc["error"]
    assert set(doc["tls"]) == {"version", "cipher", "alpn", "trace"}
    trace = doc["tls"]["trace"]
    assert all(set(event) == EVENT_KEYS for event in trace)
    kinds = [(e["direction"], e["type"]) for e in trace]
    assert kinds[:9] == [
        ("sent", "ClientHello"),
        ("received", "ServerHello"),
        ("received", "ChangeCipherSpec"),
        ("received", "EncryptedExtensions"),
        ("received", "Certificate"),
        ("received", "CertificateVerify"),
        ("received", "Finished"),
        ("sent", "ChangeCipherSpec"),
        ("sent", "Finished"),
    ]
    # mosquitto's session ticket comes after the client's handshake, on the verdict read.
    assert ("received", "NewSessionTicket") in kinds[9:]
    assert {e["version"] for e in trace} == {"TLSv1.3"}
    certificate = next(e for e in trace if e["type"] == "Certificate")
    assert certificate["fields"]["subjects"] == [c["subject"] for c in doc["chain"]]
    hello = trace[0]["fields"]
    assert "TLSv1.3" in hello["versions"]
    assert trace[1]["fields"]["cipher_suite"] == doc["tls"]["cipher"]
    ms = [e["ms"] for e in trace]
    assert ms == sorted(ms)
    assert 0 <= ms[-1] <= stage(doc, "tls")["ms"]
    assert all(isinstance(e["size"], int) and e["size"] > 0 for e in trace)


@pytest.mark.mosquitto
def test_connect_trace_text_is_a_block_under_the_tls_line(broker: str, pki: PkiFiles) -> None:
    result = probe("connect", broker, "--ca-file", str(pki.ca_cert), "--trace", "--tls-max", "1.2")
    assert result.exit_code == 0, result.stdout
    lines = result.stdout.splitlines()
    tls_line = next(i for i, line in enumerate(lines) if re.match(r"\s+PASS\s+tls\s", line))
    assert "TLSv1.2" in lines[tls_line]
    block = []
    for line in lines[tls_line + 1 :]:
        if not line.startswith(" " * 8):
            break
        block.append(line)
    assert re.match(r"\s+[\d.]+ ms -> ClientHello\s+TLSv1.2\s+\d+ B  versions=TLSv1.2", block[0])
    assert re.match(r"\s+[\d.]+ ms <- ServerHello\s+TLSv1.2\s+\d+ B  version=TLSv1.2", block[1])
    types = [line.split()[3] for line in block]
    assert types[:5] == [
        "ClientHello",
        "ServerHello",
        "Certificate",
        "ServerKeyExchange",
        "ServerHelloDone",
    ]
    assert "Finished" in types
    assert re.search(r"PASS\s+verify", lines[tls_line + 1 + len(block)])


@pytest.mark.mosquitto
def test_without_trace_the_tls_object_keeps_its_three_keys(broker: str, pki: PkiFiles) -> None:
    code, doc = connect_json(broker, pki.ca_cert)
    assert code == 0
    assert set(doc["tls"]) == {"version", "cipher", "alpn"}
    text = probe("connect", broker, "--ca-file", str(pki.ca_cert)).stdout
    assert "ClientHello" not in text


def test_a_failed_verification_is_traced_to_the_client_alert(pki: PkiFiles, tmp_path: Path) -> None:
    other = create_root_ca("Other CA")
    write_pem(tmp_path / "other.crt", other)
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context)) as server:
        code, doc = connect_json(server.address, tmp_path / "other.crt", "--trace")
    assert code == 6
    assert doc["error"]["kind"] == "unknown_ca"
    trace = doc["tls"]["trace"]
    assert (trace[-1]["direction"], trace[-1]["type"]) == ("sent", "Alert")
    assert trace[-1]["fields"]["description"] == "unknown_ca"
    # The chain and the session come from that same handshake.
    assert len(doc["chain"]) == 2
    assert doc["tls"]["version"] == "TLSv1.3"
    assert doc["tls"]["cipher"] == "TLS_AES_256_GCM_SHA384"


def test_without_the_callback_the_chain_is_fetched_again(
    pki: PkiFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback: no trace, so a second, unverified handshake reads the chain."""
    monkeypatch.setattr(tls_trace, "trace_available", lambda: False)
    ca = create_root_ca()
    files = write_chain(tmp_path, [issue_server_certificate(ca, ["aio-broker"]), ca])
    write_pem(tmp_path / "ca.crt", ca)
    with TcpServer(tls_handler(server_context(*files))) as server:
        code, doc = connect_json(server.address, tmp_path / "ca.crt", "--trace")
        accepted = server.accepted
    assert code == 6
    assert doc["error"]["kind"] == "hostname_mismatch"
    assert accepted == 2
    assert len(doc["chain"]) == 2
    assert doc["tls"] == {"version": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "alpn": None}
    assert "trace_unavailable" in [w["code"] for w in doc["warnings"]]


def test_inspect_trace(pki: PkiFiles) -> None:
    context = server_context(pki.server_cert, pki.server_key)
    with TcpServer(tls_handler(context)) as server:
        code, doc = probe_json("inspect", server.address, "--trace")
        text = probe("inspect", server.address, "--trace").stdout
        plain_code, plain = probe_json("inspect", server.address)
    assert code == 0
    kinds = [e["type"] for e in doc["tls"]["trace"]]
    assert kinds[:2] == ["ClientHello", "ServerHello"]
    assert "Certificate" in kinds
    assert re.search(r"ms <- Certificate\s+TLSv1.3", text)
    assert plain_code == 0
    assert set(plain["tls"]) == {"version", "cipher", "alpn"}


def test_inspect_trace_of_a_failed_handshake(tmp_path: Path) -> None:
    from .openssl_server import openssl_server, self_signed

    cert, key = self_signed(tmp_path, "dsa")
    with openssl_server(cert, key, "-cipher", "ALL") as port:
        code, doc = probe_json("inspect", f"127.0.0.1:{port}", "--trace")
        text = probe("inspect", f"127.0.0.1:{port}", "--trace").stdout
    assert code == 5
    assert doc["error"]["kind"] == "unsupported_server_key"
    assert [e["type"] for e in doc["tls"]["trace"]] == ["ClientHello", "Alert"]
    assert text.startswith("handshake:\n")
    assert "<- Alert" in text
    assert "FAILED: unsupported_server_key" in text


_LOADED = """
import sys
from mqtt_tls_probe.cli import main
sys.argv = ["probe", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(sorted(name for name in sys.modules if name.startswith("mqtt_tls_probe")), file=sys.stderr)
"""


def _loaded(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _LOADED, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return set(ast.literal_eval(result.stderr.strip().splitlines()[-1]))


@pytest.mark.mosquitto
def test_a_passing_connect_records_but_never_decodes(broker: str, pki: PkiFiles) -> None:
    """Cold start: the decoder and probe tls's modules load only when used."""
    plain = _loaded("connect", broker, "--ca-file", str(pki.ca_cert))
    assert "mqtt_tls_probe.adapters.tls_trace" in plain  # recording, for classification
    unused = {
        "mqtt_tls_probe.core.tls_messages",
        "mqtt_tls_probe.core.tls_hello",
        "mqtt_tls_probe.adapters.tls_scan",
        "mqtt_tls_probe.orchestrators.tls_scan",
        "mqtt_tls_probe.output.trace_text",
    }
    assert plain & unused == set()
    traced = _loaded("connect", broker, "--ca-file", str(pki.ca_cert), "--trace")
    assert {"mqtt_tls_probe.core.tls_messages", "mqtt_tls_probe.output.trace_text"} <= traced
