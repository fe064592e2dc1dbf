"""The harness broker: ephemeral ports, TLS with the PKI's CA, clean shutdown."""

from __future__ import annotations

import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.harness import BackgroundBroker
from mqtt_tls_probe.dev.pki import PkiFiles, init_pki

from .servers import ipv6_loopback


def _tls_handshake(port: int, ca_file: Path) -> str:
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        return str(tls.version())


def test_starts_on_an_ephemeral_port_and_frees_it(pki: PkiFiles, tmp_path: Path) -> None:
    broker = BackgroundBroker(pki, port=0)
    handle = broker.start()
    try:
        assert handle.port != 0
        assert handle.ca_file == pki.ca_cert
        assert _tls_handshake(handle.port, pki.ca_cert).startswith("TLSv1.")
        # Negative control: a client trusting another CA is refused.
        other = init_pki(tmp_path / "other")
        with pytest.raises(ssl.SSLCertVerificationError):
            _tls_handshake(handle.port, other.ca_cert)
    finally:
        broker.stop()
    with socket.socket() as again:
        again.bind(("127.0.0.1", handle.port))  # the port is free once stopped
    with socket.socket() as client:
        client.settimeout(2)
        assert client.connect_ex(("127.0.0.1", handle.port)) != 0


def test_serves_ipv6_loopback(pki: PkiFiles) -> None:
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    with BackgroundBroker(pki, host="::1") as handle:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        with (
            socket.create_connection(("::1", handle.port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname="::1"),
        ):
            pass


def _first_lines(process: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """The first lines of a process's stdout, waiting at most ``timeout`` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stream = process.stdout

    def read() -> None:
        for _ in range(count):
            lines.put(stream.readline())

    threading.Thread(target=read, daemon=True).start()
    return [lines.get(timeout=timeout) for _ in range(count)]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_probe_broker_command_stops_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    """probe broker creates its PKI, says where it listens, and shuts down on a signal."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mqtt_tls_probe",
            "broker",
            "--port",
            "0",
            "--certs",
            str(tmp_path / "c"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _first_lines(process, 3, timeout=20)
        listening = next(line for line in lines if "listening on mqtts://" in line)
        port = int(listening.rsplit(":", 1)[1])
        assert f"clients must trust: {tmp_path / 'c' / 'ca.crt'}" in "".join(lines)
        assert _tls_handshake(port, tmp_path / "c" / "ca.crt").startswith("TLSv1.")
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
    assert process.returncode == 0, err
    assert "harness broker stopped" in out
    assert "Traceback" not in err
