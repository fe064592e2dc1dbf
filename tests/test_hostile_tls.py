"""TLS servers that misbehave (issue 9, family 7)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from mqtt_tls_probe.dev.pki import PkiFiles, create_root_ca

from . import odd_certs
from .helpers import connect_json, probe_json, stage, write_pem
from .servers import TcpServer, server_context, tls_handler, write_chain

MARGIN = 0.75  # what a run spends outside the stage under test, in-process


# --- the handshake ----------------------------------------------------------------------------


def close_notify_after_hello(conn: socket.socket, stopping: threading.Event) -> None:
    """Read the ClientHello, answer with a close_notify alert, close: to any client at all."""
    conn.settimeout(5)
    conn.recv(4096)
    conn.sendall(bytes.fromhex("15030300020100"))  # alert record: warning, close_notify
    stopping.wait(0.2)
    conn.close()


def test_close_notify_during_the_handshake_is_peer_closed(pki: PkiFiles) -> None:
    """Before: "does not speak TLS: it answered 15 03 03 00 02 01 00" (a TLS record)."""
    with TcpServer(close_notify_after_hello) as server:
        code, doc = connect_json(server.address, pki.ca_cert, "--timeout", "2")
    assert code == 5
    assert doc["error"]["kind"] == "peer_closed"
    assert "close_notify" in doc["error"]["message"]
    assert stage(doc, "tls")["ok"] is False


def test_a_1_mib_certificate_is_refused_by_the_client_and_said_so(tmp_path: Path) -> None:
    ca = create_root_ca("Big Chain CA")
    files = write_chain(tmp_path, [odd_certs.oversized_leaf(ca, ["127.0.0.1"]), ca])
    write_pem(tmp_path / "ca.crt", ca)
    with TcpServer(tls_handler(server_context(*files))) as server:
        code, doc = connect_json(server.address, tmp_path / "ca.crt", "--timeout", "2")
        inspected_code, inspected = probe_json("inspect", server.address, "--timeout", "2")
    assert code == 5
    assert doc["error"]["kind"] == "unsupported_server_key"
    assert "EXCESSIVE_MESSAGE_SIZE" in doc["error"]["message"]
    assert "certificate chain" in doc["error"]["message"]
    assert inspected_code == 5
    assert inspected["error"]["kind"] == "unsupported_server_key"


def test_the_tls_stage_ends_within_its_timeout_when_the_cleartext_look_waits(
    pki: PkiFiles,
) -> None:
    """A server that closes the handshake late, then holds the cleartext look silently:
    before, the look had a timeout of its own (0.7 s + 1 s with --timeout 1)."""

    def slow_close_then_silence(conn: socket.socket, stopping: threading.Event) -> None:
        conn.settimeout(5)
        first = conn.recv(4096)
        if first[:1] == b"\x16":  # a TLS ClientHello: close, late
            stopping.wait(0.7)
            conn.close()
        else:  # the cleartext MQTT CONNECT: say nothing
            stopping.wait(5)

    with TcpServer(slow_close_then_silence) as server:
        started = time.monotonic()
        code, doc = connect_json(server.address, pki.ca_cert, "--timeout", "1")
        seconds = time.monotonic() - started
    assert code == 5
    assert doc["error"]["kind"] == "peer_closed"
    assert stage(doc, "tls")["ms"] < 1000 + 150
    assert seconds < 1 + MARGIN
