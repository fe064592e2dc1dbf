"""The ``tls`` stage: the handshake, the chain as sent, and what a failure means.

Rules:
- OpenSSL (the ssl module, CERT_REQUIRED, hostname check on) decides whether
  the server's certificate is trusted; ``verify.py`` only explains its verdict.
- The chain is read from the verifying handshake. When that handshake rejects
  the certificate, ``fetch_chain`` makes a second one without verification,
  only to read the chain: nothing is ever sent over it.
- SSL errors are classified on ``SSLError.reason`` (OpenSSL's reason code
  name), never on message text.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.errors import ErrorKind, ProbeError, UsageError
from mqtt_tls_probe.model import TlsInfo
from mqtt_tls_probe.net import Address

TLS_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate and its key, checked to belong together."""

    cert_file: Path
    key_file: Path
    subject: str


@dataclass(frozen=True)
class TlsOptions:
    server_name: str
    tls_min: str | None = None
    alpn: tuple[str, ...] = ()
    client: ClientIdentity | None = None


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


def load_client_identity(cert_file: Path, key_file: Path) -> ClientIdentity:
    """Check that ``key_file`` holds the private key of ``cert_file``'s certificate.

    Raises:
        UsageError: unreadable files, or a key that belongs to another certificate.
    """
    from cryptography.hazmat.primitives import serialization

    from mqtt_tls_probe.certinfo import name_of, parse_certificates

    try:
        certs = parse_certificates(cert_file.read_bytes())
        key_data = key_file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except ValueError as exc:
        raise UsageError(f"{cert_file} holds no valid certificate: {exc}") from exc
    if not certs:
        raise UsageError(f"{cert_file} holds no certificate")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{key_file} holds no unencrypted PEM private key") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certs[0].public_key().public_bytes(*spki):
        raise UsageError(
            f"the key in {key_file} does not belong to the certificate in {cert_file} "
            f"({name_of(certs[0].subject)}): pass the matching --key"
        )
    return ClientIdentity(cert_file, key_file, name_of(certs[0].subject))


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
    context.sslsocket_class = _AlertRecordingSocket
    return context


def handshake(
    sock: socket.socket, context: ssl.SSLContext, options: TlsOptions, timeout: float
) -> ssl.SSLSocket:
    """Run the TLS handshake on a connected socket within ``timeout`` seconds.

    Raises:
        CertificateRejected: OpenSSL did not trust the server's certificate.
        ProbeError: any other handshake failure, classified.
    """
    sock.settimeout(timeout)
    tls = context.wrap_socket(
        sock, server_hostname=options.server_name, do_handshake_on_connect=False
    )
    try:
        tls.do_handshake()
    except ssl.SSLCertVerificationError as exc:
        tls.close()
        raise CertificateRejected(exc.verify_code, exc.verify_message) from exc
    except (TimeoutError, ssl.SSLError, OSError) as exc:
        tls.close()
        raise classify_handshake_error(exc, options, timeout) from exc
    return tls


def peer_chain(tls: ssl.SSLSocket) -> list[x509.Certificate]:
    """The certificates the server sent, leaf first, trusted or not.

    Public on SSLSocket from Python 3.13 (as DER); on 3.11 and 3.12 only on
    the internal ``_sslobj`` (as ``_ssl.Certificate``). This is the one place
    that knows.
    """
    public = getattr(tls, "get_unverified_chain", None)
    if public is not None:
        raw = public() or []
    else:
        sslobj = tls._sslobj  # type: ignore[attr-defined]
        raw = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in sslobj.get_unverified_chain() or []]  # type: ignore[attr-defined]
    return [x509.load_der_x509_certificate(der) for der in raw]


def session_info(tls: ssl.SSLSocket) -> TlsInfo:
    cipher = tls.cipher()
    return TlsInfo(tls.version(), cipher[0] if cipher else None, tls.selected_alpn_protocol())


def fetch_chain(
    address: Address, options: TlsOptions, timeout: float
) -> tuple[list[x509.Certificate], TlsInfo] | None:
    """A second handshake without verification, only to read the chain as sent.

    Returns None when this handshake fails too. The connection is closed at
    once: no byte of application data crosses it.
    """
    context = build_context(None, options, verify=False)
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            tls = context.wrap_socket(sock, server_hostname=options.server_name)
            try:
                return peer_chain(tls), session_info(tls)
            finally:
                tls.close()
    except (OSError, ValueError):
        return None


def await_server_verdict(tls: ssl.SSLSocket, options: TlsOptions, window: float) -> None:
    """With TLS 1.3, wait briefly for the server's verdict on the client.

    A TLS 1.3 client finishes its handshake before the server has checked the
    client's certificate; a server that wants none, or rejects it, says so
    with an alert right after. A server that accepts the client sends session
    tickets instead (OpenSSL and most stacks do), which ends the wait early.
    Nothing an MQTT server sends comes before CONNECT, so reading here takes
    no application data away from the MQTT stage.

    Raises:
        ProbeError: the server rejected the client (``client_cert_*``) or closed.
    """
    if tls.version() != "TLSv1.3":
        return  # TLS 1.2 settles client authentication inside the handshake
    deadline = time.monotonic() + window
    original_timeout = tls.gettimeout()
    tls.setblocking(False)
    try:
        while True:
            session = tls.session
            if session is not None and session.has_ticket:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([tls], [], [], remaining)
            if not readable:
                return
            try:
                data = tls.recv(1)
            except ssl.SSLWantReadError:
                continue  # a handshake record (a ticket) was read: look again
            except ssl.SSLError as exc:
                raise classify_handshake_error(exc, options, window, after_handshake=True) from exc
            except OSError as exc:
                raise _peer_closed(after_handshake=True) from exc
            if not data:
                raise _peer_closed(after_handshake=True)
            return  # the server spoke first; the MQTT stage will see what follows
    finally:
        tls.settimeout(original_timeout)


# --- classification ------------------------------------------------------------

# OpenSSL reason names (SSLError.reason) that mean "the peer does not speak TLS".
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "HTTP_REQUEST",
    "HTTPS_PROXY_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNEXPECTED_MESSAGE",
}
_PROTOCOL_VERSION = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "NO_PROTOCOLS_AVAILABLE",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK",
    "VERSION_TOO_LOW",
    "VERSION_TOO_HIGH",
}
# Alerts a server sends about the client's certificate (or the lack of one).
_CLIENT_CERT_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_UNKNOWN_CA",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
}
_EOF = {"UNEXPECTED_EOF_WHILE_READING", "EOF"}


def classify_handshake_error(
    exc: BaseException, options: TlsOptions, timeout: float, *, after_handshake: bool = False
) -> ProbeError:
    """The kind of a failed handshake, from the exception the ssl module raised."""
    if isinstance(exc, TimeoutError | socket.timeout):
        return ProbeError(
            ErrorKind.HANDSHAKE_TIMEOUT,
            f"The server accepted TCP but did not complete the TLS handshake within {timeout:g} s.",
        )
    reason = getattr(exc, "reason", None) or ""
    if isinstance(exc, ssl.SSLEOFError | ConnectionResetError | BrokenPipeError) or reason in _EOF:
        return _peer_closed(after_handshake=after_handshake)
    if reason in _NOT_TLS:
        return ProbeError(
            ErrorKind.NOT_TLS,
            f"The server did not answer in TLS (OpenSSL: {reason}).",
        )
    if reason in _PROTOCOL_VERSION:
        wanted = f"TLS {options.tls_min} or newer" if options.tls_min else "TLS 1.2 or newer"
        return ProbeError(
            ErrorKind.PROTOCOL_VERSION,
            f"The server and this client share no TLS version: the client offered {wanted} "
            f"(OpenSSL: {reason}).",
            "Lower --tls-min, or enable the version on the broker."
            if options.tls_min
            else "Enable TLS 1.2 or 1.3 on the broker: older versions are insecure.",
        )
    if reason == "TLSV1_ALERT_NO_APPLICATION_PROTOCOL":
        return ProbeError(
            ErrorKind.PROTOCOL_VERSION,
            f"The server supports none of the ALPN protocols offered ({', '.join(options.alpn)}).",
            "Offer the protocol the listener expects with --alpn (often 'mqtt'), or drop --alpn.",
        )
    client_cert_reason = reason in _CLIENT_CERT_ALERTS
    # In TLS 1.2 an OpenSSL server that requires a certificate and gets none
    # answers with a plain handshake_failure alert.
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE" and options.client is None:
        client_cert_reason = True
    if client_cert_reason:
        return _client_cert_error(reason, options, after_handshake=after_handshake)
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        return ProbeError(
            ErrorKind.PROTOCOL_VERSION,
            "The server refused the handshake (handshake_failure alert): no common cipher, "
            "or it rejected what the client offered.",
            "Check the broker's TLS settings (versions, ciphers, curves) against this client's.",
        )
    if "ALERT" in reason:
        return ProbeError(
            ErrorKind.PEER_CLOSED,
            f"The server aborted the TLS handshake with the alert {reason}.",
        )
    if isinstance(exc, ssl.SSLError):
        return ProbeError(ErrorKind.PEER_CLOSED, f"The TLS handshake failed: {exc}.")
    if isinstance(exc, OSError) and exc.errno is not None:
        return _peer_closed(after_handshake=after_handshake)
    raise exc


def _peer_closed(*, after_handshake: bool) -> ProbeError:
    if after_handshake:
        return ProbeError(
            ErrorKind.PEER_CLOSED,
            "The server closed the connection right after the TLS handshake, without an alert.",
            "Check the broker's log: it may require a client certificate (--cert/--key) "
            "or reject this client.",
        )
    return ProbeError(
        ErrorKind.PEER_CLOSED,
        "The server closed the connection during the TLS handshake.",
    )


def _client_cert_error(reason: str, options: TlsOptions, *, after_handshake: bool) -> ProbeError:
    when = " after the handshake" if after_handshake else ""
    if options.client is None:
        return ProbeError(
            ErrorKind.CLIENT_CERT_REQUIRED,
            f"The listener requires a client certificate and none was sent "
            f"(the server answered{when} with {reason}).",
        )
    return ProbeError(
        ErrorKind.CLIENT_CERT_REJECTED,
        f"The server rejected the client certificate {options.client.subject}{when} "
        f"with the alert {reason}.",
        _CLIENT_REJECTION_HINTS.get(reason),
    )


_CLIENT_REJECTION_HINTS = {
    "TLSV1_ALERT_UNKNOWN_CA": (
        "The listener does not trust the CA that issued --cert: use a certificate from the "
        "CA the listener trusts, or add that CA to the listener's client-certificate trust."
    ),
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "The client certificate has expired: issue a new one.",
}


# --- a cleartext look, for failures that may not be TLS at all ----------------

# A minimal MQTT 3.1.1 CONNECT: clean session, keep alive 10 s, client id
# "probe-sniff", no credentials (it crosses the network in cleartext).
_MQTT_CONNECT = bytes.fromhex("101700044d5154540402000a000b70726f62652d736e696666")
_MQTT_DISCONNECT = b"\xe0\x00"


def sniff_cleartext(address: Address, timeout: float) -> str | None:
    """What the port says to a cleartext MQTT CONNECT, in a few words, or None.

    Used only after a handshake failed in a way that may mean "not TLS", to
    tell a plain MQTT listener or an HTTP server apart from a server that
    merely closed. It sends no credentials.
    """
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            sock.sendall(_MQTT_CONNECT)
            data = _read_some(sock, timeout)
            if data[:2] == b"\x20\x02":
                sock.sendall(_MQTT_DISCONNECT)
    except OSError:
        return None
    return describe_cleartext(data)


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


def describe_cleartext(data: bytes) -> str | None:
    if not data:
        return None
    if data[:2] == b"\x20\x02" and len(data) >= 4:
        return (
            f"it answered a cleartext MQTT CONNECT with CONNACK (return code {data[3]}): "
            "a plain MQTT listener without TLS"
        )
    if data.startswith(b"HTTP/"):
        status = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
        return f"it answered in cleartext HTTP ({status!r}): an HTTP server"
    if data.startswith(b"SSH-"):
        return "it sent an SSH banner: an SSH server"
    shown = data[:16]
    printable = all(32 <= b < 127 or b in b"\r\n\t" for b in shown)
    return f"it answered in cleartext: {shown!r}" if printable else f"it answered {shown.hex(' ')}"
