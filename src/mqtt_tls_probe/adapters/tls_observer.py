"""What one connection's handshake trace tells the ``tls`` and ``verify`` stages.

Rules of the module:
- The recorder (``adapters.tls_trace``) goes on the client context before the handshake,
  whether or not ``--trace`` was given: classification reads the trace in every run.
  Without ``SSLContext._msg_callback`` nothing is recorded and every fact is ``None``
  (unknown), so ``core.classify`` falls back to what it did before traces existed.
- One connection at a time per context (connect's handshake, inspect's): the events read
  are all the context recorded. ``stop()`` takes the recorder off after the ``tls``
  stage, so the MQTT 3.1.1 retry's second handshake is not mixed in.
- The server's certificate key comes from its Certificate message; when the server
  aborted before sending one, from a separate hand-made ClientHello
  (``adapters.tls_hello``), and only for a failure the key explains
  (``core.classify.NEGOTIATION_ALERTS`` without a CertificateRequest).
- Decoding (``core.tls_messages``) is imported on the failure path or for ``--trace``
  only: a passing ``probe connect`` pays for recording, not for decoding.
"""

from __future__ import annotations

import ssl
import time
from typing import TYPE_CHECKING

from mqtt_tls_probe.adapters import tls_trace
from mqtt_tls_probe.core.classify import NEGOTIATION_ALERTS, HandshakeFailure, TlsAttempt
from mqtt_tls_probe.model import TlsInfo

if TYPE_CHECKING:
    from mqtt_tls_probe.adapters.net import Address
    from mqtt_tls_probe.core.classify import ServerKey
    from mqtt_tls_probe.core.tls_messages import TraceEvent


class HandshakeObserver:
    """The recorder on one client context, and the answers its trace gives."""

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_name: str,
        address: Address | None,
        timeout: float,
    ) -> None:
        self.context = context
        self.server_name = server_name
        self.address = address
        self.timeout = timeout
        recorder = tls_trace.HandshakeRecorder() if tls_trace.trace_available() else None
        self.recorder = recorder if recorder is not None and recorder.install(context) else None
        self.start = time.perf_counter()
        self._stopped = False
        self._events: list[TraceEvent] | None = None  # decoded once, after stop()

    @property
    def available(self) -> bool:
        """Whether this Python records handshakes (``SSLContext._msg_callback``)."""
        return self.recorder is not None

    def begin(self) -> None:
        """The handshake starts now: event times count from here."""
        self.start = time.perf_counter()

    def events(self) -> list[TraceEvent]:
        """Every message recorded so far, decoded (once, when recording has stopped)."""
        if self._events is not None:
            return self._events
        events = self.recorder.events(self.start) if self.recorder is not None else []
        if self._stopped:
            self._events = events
        return events

    def stop(self) -> None:
        """Take the recorder off the context: later connections on it are not recorded.

        Nothing is decoded here: a run that never reads the events never pays for it.
        """
        if self.recorder is not None and not self._stopped:
            self.recorder.uninstall(self.context)
        self._stopped = True

    # --- classification -------------------------------------------------------------

    def enrich(
        self, failure: HandshakeFailure, attempt: TlsAttempt
    ) -> tuple[HandshakeFailure, TlsAttempt]:
        """The failure and the attempt with what the trace (and the server's key) say."""
        from mqtt_tls_probe.adapters.tls_suites import offers_dss
        from mqtt_tls_probe.core.tls_messages import HandshakeSummary

        summary = HandshakeSummary.of(self.events())
        hello = next((e for e in summary.events if e.type == "ClientHello"), None)
        groups = hello.fields.get("groups") if hello is not None else None
        attempt = attempt._replace(
            security_level=self.context.security_level,
            dsa_suites=offers_dss(self.context),
            offered_groups=groups if isinstance(groups, tuple) else None,
        )
        requested = summary.server_requested_client_certificate() if self.available else None
        key = None
        if failure.reason in NEGOTIATION_ALERTS and not requested:
            key = self._server_key(summary.server_certificates())
        return failure._replace(server_requested_certificate=requested, server_key=key), attempt

    def _server_key(self, sent: tuple[bytes, ...]) -> ServerKey | None:
        from mqtt_tls_probe.core.server_key import server_key_from_der

        if not sent and self.address is not None:
            from mqtt_tls_probe.adapters.tls_hello import ask_certificate

            sent = ask_certificate(self.address, self.server_name, self.timeout).certificates
        return server_key_from_der(sent[0]) if sent else None

    # --- what the verify stage reads when the handshake stopped at the certificate -----

    def server_chain(self) -> list[bytes]:
        """The DER certificates of the server's Certificate message, as sent."""
        from mqtt_tls_probe.core.tls_messages import HandshakeSummary

        return list(HandshakeSummary.of(self.events()).server_certificates())

    def session_info(self) -> TlsInfo | None:
        """Version, suite (OpenSSL's name, as ``SSLSocket.cipher()`` gives it) and ALPN."""
        from mqtt_tls_probe.adapters.tls_suites import openssl_suite_name

        version = suite = alpn = None
        for event in self.events():
            if event.direction != "received":
                continue
            if event.type == "ServerHello":
                version = event.fields.get("version")
                suite = event.fields.get("cipher_suite")
            if event.type in ("ServerHello", "EncryptedExtensions") and "alpn" in event.fields:
                alpn = event.fields["alpn"]
        if not isinstance(version, str):
            return None
        name = openssl_suite_name(suite) if isinstance(suite, str) else None
        return TlsInfo(version, name, alpn if isinstance(alpn, str) else None)
