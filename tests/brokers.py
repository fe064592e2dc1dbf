"""Real brokers for the tests: the amqtt harness with scenario certificates, and mosquitto."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mqtt_tls_probe.dev.harness import BrokerHandle, running_broker
from mqtt_tls_probe.dev.pki import CertAndKey, PkiFiles

from .helpers import write_pem
from .servers import free_port

REQUIRE_MOSQUITTO = "PROBE_REQUIRE_MOSQUITTO"


def write_server_files(directory: Path, chain: Sequence[CertAndKey], ca: CertAndKey) -> PkiFiles:
    """A PKI directory whose server sends ``chain`` (leaf first) and whose CA file is ``ca``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = PkiFiles(directory)
    write_pem(files.server_cert, *chain)
    files.server_key.write_bytes(chain[0].key_pem())
    files.server_key.chmod(0o600)
    write_pem(files.ca_cert, ca)
    return files


@contextlib.contextmanager
def harness_serving(
    directory: Path, chain: Sequence[CertAndKey], ca: CertAndKey
) -> Iterator[BrokerHandle]:
    """The amqtt harness broker on a free port, sending ``chain``."""
    with running_broker(write_server_files(directory, chain, ca)) as handle:
        yield handle


def mosquitto_binary() -> str:
    """The mosquitto binary, or a skip (a failure where CI demands mosquitto)."""
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if found is None:
        reason = "mosquitto is not installed (Debian: apt-get install mosquitto)"
        if os.environ.get(REQUIRE_MOSQUITTO) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_MOSQUITTO}=1 requires it")
        pytest.skip(reason)
    return found


@contextlib.contextmanager
def mosquitto(directory: Path, listener: Sequence[str]) -> Iterator[int]:
    """mosquitto with one listener on 127.0.0.1 and the given listener lines; yields the port."""
    binary = mosquitto_binary()
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "mosquitto.log"
    for attempt in range(3):  # the free port may be taken between probe and bind
        port = free_port()
        config = directory / "mosquitto.conf"
        config.write_text(
            "\n".join(
                [
                    "user root" if os.geteuid() == 0 else "",
                    "per_listener_settings false",
                    "persistence false",
                    f"log_dest file {log}",
                    "log_type all",
                    f"listener {port} 127.0.0.1",
                    "set_tcp_nodelay true",
                    *listener,
                    "",
                ]
            )
        )
        process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        if _wait_listening(port, process, 5.0):
            break
        _stop(process)
        if attempt == 2:
            text = log.read_text() if log.exists() else ""
            pytest.fail(f"mosquitto did not start: {text[-2000:]}")
    try:
        yield port
    finally:
        _stop(process)


def _wait_listening(port: int, process: subprocess.Popen[bytes], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    if process.stderr is not None:
        process.stderr.close()
