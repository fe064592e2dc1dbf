"""A hand-made TLS 1.2 ClientHello, and the reading of what a server answers to it.

Rule of the module: pure code, bytes in and out. It exists for one question OpenSSL's
client cannot ask: *which certificate does this server have?* when the server aborts
the handshake before sending it to the probe's real ClientHello. That happens when the
certificate's key is one the client cannot use (measured with OpenSSL 3.0.19 servers:
a DSA certificate needs a DHE-DSS suite, which Python's ``ssl`` never offers; a
secp256k1 or brainpool certificate needs its curve in the client's supported_groups,
which Python's ``ssl`` cannot add beside the default ones, since
``SSLContext.set_ecdh_curve`` sets exactly one group; an RSA-512 certificate cannot
sign TLS 1.3's RSA-PSS). The server then answers ``handshake_failure`` right after the
ClientHello, exactly as it does when no cipher suite is shared: only its certificate
tells the two apart.

This ClientHello offers TLS 1.2 only (its certificate travels in clear, RFC 5246
§7.4.2), every suite the caller lists, every named group of the IANA registry that a
TLS 1.2 server may hold a certificate on, and every signature scheme. The probe reads
the server's first flight up to its Certificate and hangs up: no key is ever computed.

Formats: RFC 5246 §6.2.1 (records), §7.4.1.2 (ClientHello), §7.4 (handshake header);
RFC 6066 §3 (server_name); RFC 8422 §5.1 (supported_groups, ec_point_formats);
RFC 5246 §7.4.1.4.1 and RFC 8446 §4.2.3 (signature_algorithms); RFC 5746 §3.2
(renegotiation_info).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from mqtt_tls_probe.core.tls_messages import SIGNATURE_SCHEMES

HANDSHAKE_RECORD: Final = 22
ALERT_RECORD: Final = 21
TLS12: Final = 0x0303
TLS10: Final = 0x0301  # the record version of a first ClientHello (RFC 8446 §5.1 says so too)
MAX_RECORD: Final = 2**14 + 2048  # RFC 5246 §6.2.3: the largest TLSCiphertext fragment
RANDOM_SIZE: Final = 32

# Named groups a TLS 1.2 server's ECDSA certificate or ECDHE may use (RFC 8422 §5.1.1 and
# the IANA registry: the deprecated sect*/secp1xx curves 1-22, brainpool 26-28 (RFC 7027),
# x25519/x448 29-30, ffdhe 256-260 (RFC 7919)). Offering them all is what lets a server
# on an unusual curve answer at all.
ALL_TLS12_GROUPS: Final[tuple[int, ...]] = (
    *range(1, 31),
    *range(256, 261),
)
ALL_SIGNATURE_SCHEMES: Final[tuple[int, ...]] = tuple(SIGNATURE_SCHEMES)

_SERVER_HELLO_DONE: Final = 14
_CERTIFICATE: Final = 11


def client_hello(
    server_name: str | None,
    suites: Sequence[int],
    random: bytes,
    *,
    groups: Sequence[int] = ALL_TLS12_GROUPS,
    signature_schemes: Sequence[int] = ALL_SIGNATURE_SCHEMES,
) -> bytes:
    """One TLS record holding a TLS 1.2 ClientHello (RFC 5246 §7.4.1.2).

    ``random`` is the 32-byte client random (the caller draws it: this module has no
    randomness). An IP address as ``server_name`` sends no SNI (RFC 6066 §3 allows host
    names only), as OpenSSL does.
    """
    if len(random) != RANDOM_SIZE:
        raise ValueError("the client random is 32 bytes")
    extensions = b"".join(
        [
            _server_name_extension(server_name),
            _extension(10, _vector(2, b"".join(_u16(g) for g in groups))),
            _extension(11, _vector(1, b"\x00")),  # ec_point_formats: uncompressed
            _extension(13, _vector(2, b"".join(_u16(s) for s in signature_schemes))),
            _extension(0xFF01, b"\x00"),  # renegotiation_info, empty (initial handshake)
        ]
    )
    body = b"".join(
        [
            _u16(TLS12),
            random,
            _vector(1, b""),  # legacy_session_id
            _vector(2, b"".join(_u16(s) for s in suites)),
            _vector(1, b"\x00"),  # compression: null only
            _vector(2, extensions),
        ]
    )
    message = bytes([1]) + len(body).to_bytes(3, "big") + body
    return bytes([HANDSHAKE_RECORD]) + _u16(TLS10) + _vector(2, message)


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _vector(length_width: int, data: bytes) -> bytes:
    return len(data).to_bytes(length_width, "big") + data


def _extension(kind: int, data: bytes) -> bytes:
    return _u16(kind) + _vector(2, data)


def _server_name_extension(server_name: str | None) -> bytes:
    if not server_name or _is_ip(server_name):
        return b""
    name = server_name.encode("idna") if not server_name.isascii() else server_name.encode()
    return _extension(0, _vector(2, b"\x00" + _vector(2, name)))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


# --- the server's answer --------------------------------------------------------------


@dataclass
class ServerFlight:
    """What the server sent back, fed in as it arrives; ``done`` once nothing more is needed.

    ``messages`` are whole handshake messages (header included), in order, as
    ``core.tls_messages.decode_handshake`` reads them. Reading stops at the server's
    Certificate, at ServerHelloDone (an anonymous suite: no certificate), at an alert,
    or at anything that is not a TLS handshake record (``error``).
    """

    messages: list[bytes] = field(default_factory=list)
    alert: bytes | None = None
    error: str | None = None
    _records: bytearray = field(default_factory=bytearray)
    _handshake: bytearray = field(default_factory=bytearray)

    @property
    def done(self) -> bool:
        if self.alert is not None or self.error is not None:
            return True
        return any(m[0] in (_CERTIFICATE, _SERVER_HELLO_DONE) for m in self.messages)

    def feed(self, data: bytes) -> None:
        """Add bytes from the socket; complete records and messages are taken out."""
        self._records += data
        while not self.done and len(self._records) >= 5:
            kind = self._records[0]
            length = int.from_bytes(self._records[3:5], "big")
            if self._records[1] != 3 or length > MAX_RECORD:
                self.error = f"not a TLS record (starts {bytes(self._records[:5]).hex()})"
                return
            if len(self._records) < 5 + length:
                return
            payload = bytes(self._records[5 : 5 + length])
            del self._records[: 5 + length]
            if kind == ALERT_RECORD:
                self.alert = payload
            elif kind == HANDSHAKE_RECORD:
                self._handshake += payload
                self._take_messages()
            else:
                self.error = f"a record of type {kind} before the server's certificate"

    def _take_messages(self) -> None:
        # A handshake message may span records, and a record may hold several (RFC 5246 §6.2.1).
        while len(self._handshake) >= 4 and not self.done:
            length = int.from_bytes(self._handshake[1:4], "big")
            if len(self._handshake) < 4 + length:
                return
            self.messages.append(bytes(self._handshake[: 4 + length]))
            del self._handshake[: 4 + length]
