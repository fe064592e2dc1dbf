"""Network and TLS handshake failures, each produced for real and named exactly."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mqtt_tls_probe.dev.harness import BackgroundBroker, BrokerHandle
from mqtt_tls_probe.dev.pki import (
    PkiFiles,
    create_root_ca,
    init_pki,
    issue_client_certificate,
    issue_server_certificate,
)

from .brokers import mosquitto
from .helpers import probe, probe_json, stage, write_pem
from .servers import (
    TcpServer,
    answer_http,
    close_at_once,
    full_backlog,
    hold,
    ipv6_loopback,
    server_context,
    tls_handler,
    write_chain,
)


def _connect(address: str, pki: PkiFiles, *args: str) -> tuple[int, dict[str, Any]]:
    return probe_json("connect", address, "--ca-file", str(pki.ca_cert), *args)


def _client(cert: Path, key: Path) -> tuple[str, ...]:
    return ("--cert", str(cert), "--key", str(key))


def _error(document: dict[str, Any]) -> dict[str, str]:
    error = document["error"]
    assert isinstance(error, dict)
    return error


# --- resolve and tcp --------------------------------------------------------------


def test_connect_timeout_when_syns_go_unanswered(pki: PkiFiles) -> None:
    with full_backlog() as port:
        code, doc = _connect(f"127.0.0.1:{port}", pki, "--timeout", "0.5")
    assert code == 4
    assert _error(doc)["kind"] == "connect_timeout"
    assert _error(doc)["stage"] == "tcp"
    assert "0.5 s" in _error(doc)["message"]


def test_network_unreachable_in_an_empty_network_namespace(pki: PkiFiles) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare -n)")
    # A namespace of its own has no route at all, not even loopback: a real ENETUNREACH.
    probe_command = [sys.executable, "-m", "mqtt_tls_probe", "connect", "10.1.2.3:18883"]
    options = ["--ca-file", str(pki.ca_cert), "--output", "json", "--timeout", "2"]
    result = subprocess.run(
        [unshare, "-n", *probe_command, *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4, result.stderr
    assert json.loads(result.stdout)["error"]["kind"] == "network_unreachable"


def test_ipv6_target(pki: PkiFiles) -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with BackgroundBroker(pki, host="::1") as handle:
        code, doc = _connect(f"[::1]:{handle.port}", pki)
    assert code == 0, doc["error"]
    assert doc["target"] == {"host": "::1", "port": handle.port, "server_name": "::1"}
    assert stage(doc, "tcp")["detail"] == f"connected to [::1]:{handle.port}"


# --- the handshake ------------------------------------------------------------------


def test_http_server_is_not_tls(pki: PkiFiles) -> None:
    with TcpServer(answer_http) as server:
        code, doc = _connect(server.address, pki)
    assert code == 5
    assert _error(doc)["kind"] == "not_tls"
    assert "HTTP" in _error(doc)["message"]


def test_plain_mqtt_listener_is_not_tls(pki: PkiFiles, tmp_path: Path) -> None:
    with mosquitto(tmp_path, ["allow_anonymous true"]) as port:
        code, doc = _connect(f"127.0.0.1:{port}", pki)
    assert code == 5
    assert _error(doc)["kind"] == "not_tls"
    assert "plain MQTT listener" in _error(doc)["message"]


def test_immediate_close_is_peer_closed(pki: PkiFiles) -> None:
    with TcpServer(close_at_once) as server:
        code, doc = _connect(server.address, pki)
    assert code == 5
    assert _error(doc)["kind"] == "peer_closed"


def test_silent_server_is_handshake_timeout(pki: PkiFiles) -> None:
    with TcpServer(hold) as server:
        code, doc = _connect(server.address, pki, "--timeout", "0.5")
    assert code == 5
    assert _error(doc)["kind"] == "handshake_timeout"
    assert stage(doc, "tcp")["ok"] is True


def test_tls12_only_server_and_tls_min_13_is_protocol_version(
    pki: PkiFiles, tmp_path: Path
) -> None:
    ca = create_root_ca("Protocol CA")
    leaf = issue_server_certificate(ca, ["127.0.0.1"])
    write_pem(tmp_path / "ca.crt", ca)
    files = write_chain(tmp_path, [leaf, ca])
    context = server_context(*files, max_version=ssl.TLSVersion.TLSv1_2)
    with TcpServer(tls_handler(context)) as server:
        args = ("connect", server.address, "--ca-file", str(tmp_path / "ca.crt"), "--timeout", "1")
        code, doc = probe_json(*args, "--tls-min", "1.3")
        # The twin: without --tls-min, TLS 1.2 is negotiated and verified.
        twin_code, twin = probe_json(*args)
    assert code == 5
    assert _error(doc)["kind"] == "protocol_version"
    assert stage(twin, "tls")["ok"] is True
    assert twin["tls"]["version"] == "TLSv1.2"
    assert stage(twin, "verify")["ok"] is True
    assert twin_code == 7  # this small server speaks no MQTT: no CONNACK


# --- client certificates --------------------------------------------------------------


@pytest.fixture
def mtls_listener(pki: PkiFiles) -> list[str]:
    return [
        f"certfile {pki.server_cert}",
        f"keyfile {pki.server_key}",
        f"cafile {pki.ca_cert}",
        "require_certificate true",
        "allow_anonymous true",
    ]


def test_client_certificate_required_tls13(
    pki: PkiFiles, tmp_path: Path, mtls_listener: list[str]
) -> None:
    with mosquitto(tmp_path, mtls_listener) as port:
        code, doc = _connect(f"127.0.0.1:{port}", pki)
        ok_code, ok = _connect(
            f"127.0.0.1:{port}",
            pki,
            *_client(pki.client_cert, pki.client_key),
        )
    assert code == 5
    assert _error(doc)["kind"] == "client_cert_required"
    assert _error(doc)["stage"] == "tls"
    # TLS 1.3 finishes the client's handshake first; the alert is read right after it.
    assert stage(doc, "tls")["ok"] is False
    assert stage(doc, "mqtt")["skipped"] is True
    assert "after the handshake" in _error(doc)["message"]
    assert "--cert" in _error(doc)["hint"]
    assert ok_code == 0, ok["error"]
    assert "client certificate CN=probe-client" in stage(ok, "tls")["detail"]


def test_client_certificate_rejected_tls13(
    pki: PkiFiles, tmp_path: Path, mtls_listener: list[str]
) -> None:
    stranger = init_pki(tmp_path / "stranger", client=True)
    with mosquitto(tmp_path / "broker", mtls_listener) as port:
        code, doc = _connect(
            f"127.0.0.1:{port}",
            pki,
            *_client(stranger.client_cert, stranger.client_key),
        )
    assert code == 5
    assert _error(doc)["kind"] == "client_cert_rejected"
    assert "CN=probe-client" in _error(doc)["message"]


def test_client_certificate_required_tls12(pki: PkiFiles, tmp_path: Path) -> None:
    context = server_context(
        pki.server_cert, pki.server_key, max_version=ssl.TLSVersion.TLSv1_2, client_ca=pki.ca_cert
    )
    with TcpServer(tls_handler(context)) as server:
        code, doc = _connect(server.address, pki, "--timeout", "1")
        twin_code, twin = _connect(
            server.address,
            pki,
            "--timeout",
            "1",
            *_client(pki.client_cert, pki.client_key),
        )
    assert code == 5
    assert _error(doc)["kind"] == "client_cert_required"
    assert stage(twin, "tls")["ok"] is True  # with the certificate the handshake completes
    assert twin_code == 7


def test_client_certificate_rejected_tls12(pki: PkiFiles, tmp_path: Path) -> None:
    other = create_root_ca("Other client CA")
    stranger = issue_client_certificate(other)
    write_pem(tmp_path / "c.crt", stranger)
    (tmp_path / "c.key").write_bytes(stranger.key_pem())
    context = server_context(
        pki.server_cert, pki.server_key, max_version=ssl.TLSVersion.TLSv1_2, client_ca=pki.ca_cert
    )
    with TcpServer(tls_handler(context)) as server:
        args = _client(tmp_path / "c.crt", tmp_path / "c.key")
        code, doc = _connect(server.address, pki, "--timeout", "1", *args)
    assert code == 5
    assert _error(doc)["kind"] == "client_cert_rejected"


def test_key_that_does_not_match_the_certificate_is_refused_before_connecting(
    pki: PkiFiles, tmp_path: Path
) -> None:
    stranger = init_pki(tmp_path / "s", client=True)
    with TcpServer(hold) as server:
        result = probe(
            "connect",
            server.address,
            "--ca-file",
            str(pki.ca_cert),
            "--cert",
            str(pki.client_cert),
            "--key",
            str(stranger.client_key),
        )
        accepted = server.accepted
    assert result.exit_code == 2
    assert "does not belong to the certificate" in result.stderr
    assert accepted == 0  # nothing was sent anywhere


def test_alpn_is_offered_and_reported(pki: PkiFiles, tmp_path: Path) -> None:
    context = server_context(pki.server_cert, pki.server_key)
    context.set_alpn_protocols(["mqtt"])
    with TcpServer(tls_handler(context)) as server:
        _, doc = _connect(server.address, pki, "--alpn", "mqtt", "--timeout", "1")
    assert doc["tls"]["alpn"] == "mqtt"
    assert "ALPN mqtt" in stage(doc, "tls")["detail"]


def test_harness_fixture_is_unaffected(harness: BrokerHandle, pki: PkiFiles) -> None:
    """A control after the failure scenarios: the shared broker still serves."""
    code, _ = _connect(harness.address, pki)
    assert code == 0
