"""Ask a server for its certificate with a hand-made TLS 1.2 ClientHello (``core.tls_hello``).

Rule of the module: one TCP connection, one ClientHello out, the server's first flight
read up to its Certificate message, then the connection is closed. Nothing is
verified or computed, no application data is sent; every read is bounded in bytes
(``MAX_FLIGHT``) and in time (``timeout`` for the whole exchange).

Used only after a handshake failed in a way that the server's certificate explains
(``unsupported_server_key`` versus ``no_shared_cipher``), and by ``probe tls`` when no
handshake the local OpenSSL can make reaches the certificate.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from mqtt_tls_probe.adapters.net import Address
from mqtt_tls_probe.adapters.tls_suites import known_tls12_suites
from mqtt_tls_probe.core.tls_hello import ServerFlight, client_hello
from mqtt_tls_probe.core.tls_messages import TLS12, decode_alert, decode_handshake

MAX_FLIGHT = 256 * 1024  # bytes read at most: a chain of a few certificates is ~5 KB


@dataclass(frozen=True)
class HelloAnswer:
    """What a server answered to the probe's TLS 1.2 ClientHello."""

    certificates: tuple[bytes, ...] = ()  # DER, as sent, leaf first
    version: str | None = None  # from the ServerHello
    cipher_suite: str | None = None  # IANA name (or 0x....) from the ServerHello
    alert: str | None = None  # the alert's description, when the server sent one
    error: str | None = None  # no answer, not TLS, or cut short


def ask_certificate(address: Address, server_name: str | None, timeout: float) -> HelloAnswer:
    """The server's certificate chain as it sends it to a TLS 1.2 ClientHello offering all.

    Never raises for network trouble: what went wrong is in ``error``.
    """
    hello = client_hello(server_name, known_tls12_suites(), os.urandom(32))
    deadline = time.monotonic() + timeout
    flight = ServerFlight()
    received = 0
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            sock.sendall(hello)
            while not flight.done and received < MAX_FLIGHT:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _answer(flight, "no complete answer within the timeout")
                sock.settimeout(remaining)
                chunk = sock.recv(16384)
                if not chunk:
                    return _answer(flight, "the server closed the connection")
                received += len(chunk)
                flight.feed(chunk)
    except (TimeoutError, OSError) as exc:
        return _answer(flight, f"no answer: {exc}")
    return _answer(flight, None if flight.done else "the answer was too large")


def _answer(flight: ServerFlight, problem: str | None) -> HelloAnswer:
    version = suite = None
    certificates: tuple[bytes, ...] = ()
    for raw in flight.messages:
        for message in decode_handshake(raw, version=TLS12):
            if message.type == "ServerHello":
                found_version = message.fields.get("version")
                found_suite = message.fields.get("cipher_suite")
                version = found_version if isinstance(found_version, str) else None
                suite = found_suite if isinstance(found_suite, str) else None
            elif message.type == "Certificate":
                certificates = message.certificates
    alert = None
    if flight.alert is not None:
        description = decode_alert(flight.alert).fields.get("description")
        alert = description if isinstance(description, str) else None
    return HelloAnswer(certificates, version, suite, alert, flight.error or problem)
