"""The ``tls`` stage: the handshake, the chain as sent, and what a failure means.

Rules:
- OpenSSL (the ssl module, CERT_REQUIRED, hostname check on) decides whether
  the server's certificate is trusted; ``verify.py`` only explains its verdict.
- The chain is read from the verifying handshake. When that handshake rejects
  the certificate, the chain comes from its trace (the server's Certificate
  message, ``adapters.tls_observer``); only without a trace does
  ``fetch_chain`` make a second handshake without verification, only to read
  the chain: nothing is ever sent over it.
- SSL errors are reduced to facts (``HandshakeFailure``) here and classified
  by ``core.classify`` on ``SSLError.reason`` (OpenSSL's reason code name),
  never on message text.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from typing import TYPE_CHECKING

from mqtt_tls_probe.adapters.net import Address
from mqtt_tls_probe.adapters.tls_settings import apply_client_limits
from mqtt_tls_probe.config import TlsOptions
from mqtt_tls_probe.core.classify import (
    HandshakeFailure,
    TlsAttempt,
    classify_handshake,
    describe_cleartext,
    peer_closed,
)
from mqtt_tls_probe.core.names import idna_fast_path
from mqtt_tls_probe.errors import ProbeError
from mqtt_tls_probe.model import TlsInfo

if TYPE_CHECKING:
    from mqtt_tls_probe.adapters.tls_observer import HandshakeObserver
    from mqtt_tls_probe.core.certinfo import Loaded

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class CertificateRejected(Exception):
    """OpenSSL rejected the server's certificate during the verifying handshake."""

    def __init__(self, verify_code: int, verify_message: str) -> None:
        super().__init__(f"{verify_message} (verify error {verify_code})")
        self.verify_code = verify_code
        self.verify_message = verify_message


class _AlertRecordingSocket(ssl.SSLSocket):
    """An SSLSocket that remembers the last TLS error a read or write met.

    paho turns every socket error into "connection lost"; with TLS 1.3 the
    server's verdict on a client certificate arrives after the handshake, so
    the MQTT stage looks here to report the alert instead.
    """

    last_tls_error: ssl.SSLError | None = None

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.last_tls_error = exc
            raise

    def send(self, data: bytes, flags: int = 0) -> int:  # type: ignore[override]
        try:
            return super().send(data, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise
        except ssl.SSLError as exc:
            self.last_tls_error = exc
            raise


def build_context(anchors_pem: str | None, options: TlsOptions, *, verify: bool) -> ssl.SSLContext:
    """A client context: verifying against ``anchors_pem`` only, or not verifying at all."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if anchors_pem:
            context.load_verify_locations(cadata=anchors_pem)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.tls_min:
        context.minimum_version = TLS_VERSIONS[options.tls_min]
    if options.alpn:
        context.set_alpn_protocols(list(options.alpn))
    if options.client:
        context.load_cert_chain(options.client.cert_file, options.client.key_file)
    apply_client_limits(context, options.tls_max, options.ciphers, options.keylog)
    context.sslsocket_class = _AlertRecordingSocket
    return context


def handshake(
    sock: socket.socket,
    context: ssl.SSLContext,
    options: TlsOptions,
    timeout: float,
    *,
    observer: HandshakeObserver | None = None,
) -> ssl.SSLSocket:
    """Run the TLS handshake on a connected socket within ``timeout`` seconds.

    ``observer`` (on ``context``) adds what the handshake trace saw to the classification.

    Raises:
        CertificateRejected: OpenSSL did not trust the server's certificate.
        ProbeError: any other handshake failure, classified.
    """
    sock.settimeout(timeout)
    # ssl passes a str through the idna codec, and bytes as they are:
    # https://github.com/python/cpython/blob/v3.11.7/Lib/ssl.py#L503-L509
    server_hostname = idna_fast_path(options.server_name) or options.server_name
    tls = context.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        tls.close()
        raise CertificateRejected(exc.verify_code, exc.verify_message) from exc
    except (TimeoutError, ssl.SSLError, OSError) as exc:
        tls.close()
        raise handshake_error(exc, options, timeout, observer=observer) from exc
    return tls


def peer_chain(tls: ssl.SSLSocket) -> list[Loaded]:
    """The certificates the server sent, leaf first, trusted or not, read by cryptography.

    A certificate OpenSSL took but cryptography cannot read in full comes back
    as an ``Unparseable``, in its place.
    """
    from mqtt_tls_probe.core.certinfo import load_der  # cryptography: only when needed

    return [load_der(der) for der in sent_chain_der(tls)]


def sent_chain_der(tls: ssl.SSLSocket) -> list[bytes]:
    """The DER of the certificates the server sent, leaf first, trusted or not.

    Public on SSLSocket from Python 3.13 (``get_unverified_chain``, as DER); on
    3.11 and 3.12 only on the internal ``_sslobj`` (as ``_ssl.Certificate``):
    https://github.com/python/cpython/blob/v3.11.7/Modules/_ssl.c#L2075-L2120
    This and ``verified_chain_der`` are the one place that knows.
    """
    return _chain_der(tls, "get_unverified_chain")


def verified_chain_der(tls: ssl.SSLSocket) -> list[bytes]:
    """The chain OpenSSL built and verified, leaf first, ending at the trusted certificate."""
    return _chain_der(tls, "get_verified_chain")


def _chain_der(tls: ssl.SSLSocket, method: str) -> list[bytes]:
    public = getattr(tls, method, None)
    if public is not None:
        return list(public() or [])
    sslobj = tls._sslobj  # type: ignore[attr-defined]
    chain = getattr(sslobj, method)() or []
    return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]


def session_info(tls: ssl.SSLSocket) -> TlsInfo:
    cipher = tls.cipher()
    return TlsInfo(tls.version(), cipher[0] if cipher else None, tls.selected_alpn_protocol())


def fetch_chain(
    address: Address, options: TlsOptions, timeout: float
) -> tuple[list[Loaded], TlsInfo] | None:
    """A second handshake without verification, only to read the chain as sent.

    Returns None when this handshake fails too. The connection is closed at
    once: no byte of application data crosses it. Connect and handshake share
    ``timeout``.
    """
    context = build_context(None, options, verify=False)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            sock.settimeout(_left(deadline))
            tls = context.wrap_socket(sock, server_hostname=options.server_name)
            try:
                return peer_chain(tls), session_info(tls)
            finally:
                tls.close()
    except (OSError, ValueError):
        return None


def await_server_verdict(
    tls: ssl.SSLSocket,
    options: TlsOptions,
    window: float,
    *,
    observer: HandshakeObserver | None = None,
) -> None:
    """With TLS 1.3, wait briefly for the server's verdict on the client.

    A TLS 1.3 client finishes its handshake before the server has checked the
    client's certificate; a server that wants none, or rejects it, says so
    with an alert right after. A server that accepts the client sends session
    tickets instead (OpenSSL and most stacks do), which ends the wait early:
    a read that consumes a record and yields no data (``SSLWantReadError``
    after the socket was readable) has read a handshake record, a ticket.
    ``SSLSocket.session`` is never read: each read of it leaks about 6 KB on
    CPython 3.11 (python/cpython#116810), which a scan would pay per target.
    Nothing an MQTT server sends comes before CONNECT, so reading here takes
    no application data away from the MQTT stage.

    Raises:
        ProbeError: the server rejected the client (``client_cert_*``) or closed.
    """
    if tls.version() != "TLSv1.3":
        return  # TLS 1.2 settles client authentication inside the handshake
    original_timeout = tls.gettimeout()
    tls.setblocking(False)
    try:
        readable, _, _ = select.select([tls], [], [], window)
        if not readable:
            return  # no word within the window: the MQTT stage will see any later alert
        try:
            data = tls.recv(1)
        except ssl.SSLWantReadError:
            return  # a handshake record, a session ticket: the server accepted the client
        except ssl.SSLError as exc:
            raise handshake_error(
                exc, options, window, after_handshake=True, observer=observer
            ) from exc
        except OSError as exc:
            raise ProbeError.from_info(peer_closed(after_handshake=True)) from exc
        if not data:
            raise ProbeError.from_info(peer_closed(after_handshake=True))
        # The server spoke first; the MQTT stage will see what follows.
    finally:
        tls.settimeout(original_timeout)


# --- classification -------------------------------------------------------------


def handshake_error(
    exc: BaseException,
    options: TlsOptions,
    timeout: float,
    *,
    after_handshake: bool = False,
    observer: HandshakeObserver | None = None,
) -> ProbeError:
    """The classified failure of a handshake, from the exception the ssl module raised.

    Raises:
        BaseException: ``exc`` itself when the tables do not know it (a bug, exit 1).
    """
    failure = HandshakeFailure(
        reason=getattr(exc, "reason", None) or "",
        timed_out=isinstance(exc, TimeoutError | socket.timeout),
        closed=isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError),
        close_notify=isinstance(exc, ssl.SSLZeroReturnError),
        ssl_error=isinstance(exc, ssl.SSLError),
        os_error=isinstance(exc, OSError) and exc.errno is not None,
        text=str(exc),
    )
    attempt = TlsAttempt(
        tls_min=options.tls_min,
        alpn=options.alpn,
        client_subject=options.client.subject if options.client else None,
        timeout=timeout,
        after_handshake=after_handshake,
        tls_max=options.tls_max,
        ciphers=options.ciphers,
    )
    if observer is not None:
        failure, attempt = observer.enrich(failure, attempt)
    info = classify_handshake(failure, attempt)
    if info is None:
        raise exc
    return ProbeError.from_info(info)


# --- a cleartext look, for failures that may not be TLS at all ----------------

# A minimal MQTT 3.1.1 CONNECT: clean session, keep alive 10 s, client id
# "probe-sniff", no credentials (it crosses the network in cleartext).
_MQTT_CONNECT = bytes.fromhex("101700044d5154540402000a000b70726f62652d736e696666")
_MQTT_DISCONNECT = b"\xe0\x00"


def sniff_cleartext(address: Address, timeout: float) -> str | None:
    """What the port says to a cleartext MQTT CONNECT, in a few words, or None.

    Used only after a handshake failed in a way that may mean "not TLS", to
    tell a plain MQTT listener or an HTTP server apart from a server that
    merely closed. It sends no credentials. All of it takes ``timeout`` at most.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            sock.sendall(_MQTT_CONNECT)
            data = _read_some(sock, _left(deadline))
            if data[:2] == b"\x20\x02":
                sock.sendall(_MQTT_DISCONNECT)
    except OSError:
        return None
    return describe_cleartext(data)


def _left(deadline: float) -> float:
    """Seconds to ``deadline``, at least 1 ms (a socket timeout of 0 means non-blocking)."""
    return max(deadline - time.monotonic(), 0.001)


def _read_some(sock: socket.socket, timeout: float, limit: int = 64) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < 4:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(limit)
        except (TimeoutError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data
