"""Decode the TLS handshake messages and alerts of one connection into trace events.

Rule of the module: pure code. Bytes in, frozen events out; no sockets, no clock, no
I/O. Every decoder is total: garbage, truncated or hostile input yields a partial
decode with an ``error`` note, never an exception. Every loop is bounded by the data
length, every list kept is capped (``MAX_ITEMS``, ``MAX_CERTIFICATES``), every string
is cut (``MAX_TEXT``). DER names are decoded here too (a tiny reader for X.501 Name,
formatted like ``cryptography``'s ``Name.rfc4514_string``), so the module needs no
third-party import.

Formats: RFC 8446 (TLS 1.3) §4 handshake, §6 alerts, §4.2 extensions; RFC 5246
(TLS 1.2) §7.4; RFC 4492/8422 (ECDHE ServerKeyExchange); RFC 7301 (ALPN); RFC 6066
(SNI); RFC 5280 §4.1 and RFC 4514 (names).

What CPython 3.11.7 with OpenSSL 3.0.19 hands to ``SSLContext._msg_callback``
(measured against Python and ``openssl s_server`` peers; the input of
``build_events`` is exactly this stream, in order, per connection):

- One call per record header: content type 256 (``SSL3_RT_HEADER``), the 5 header
  bytes; its ``version`` argument is the record's legacy version (0x0301 for the
  first ClientHello, 0x0303 after). Headers arrive for every record in both
  directions, including application data (outer type 23) and, in TLS 1.3, every
  encrypted record (outer type 23).
- One call per handshake message (type 22), the whole message, decrypted, with its
  4-byte header, reassembled, in TLS 1.2 and 1.3 alike (TLS 1.2's encrypted Finished
  arrives in clear, 16 bytes). ``msg_type`` is right for these; ``version`` is not
  trustworthy: a received ServerHello is labelled TLSv1.3 in a TLS 1.2 handshake and
  the ClientHello carries the client's maximum. Hence the version of an event is the
  one the ServerHello chose, from its bytes.
- TLS 1.3 only: before each encrypted message, a 1-byte call with content type 257
  (``SSL3_RT_INNER_CONTENT_TYPE``) carrying the inner content type (22 handshake,
  21 alert, 23 application data). Python's ``ssl`` wrapper maps that byte through the
  *handshake* message enum, so it shows up mislabelled as ``CERTIFICATE_STATUS`` (22),
  ``CERTIFICATE_URL`` (21) or ``SUPPLEMENTAL_DATA`` (23): this is the "mislabelled
  inner type" (the handshake messages themselves carry a correct ``msg_type`` in this
  build). The decoder ignores ``msg_type`` altogether and reads types from the bytes.
  The 257 call's ``version`` is 0x0303 when written and 0x0304 when read.
- Alerts (type 21): the 2 bytes level, description; sent and received, in TLS 1.2
  and 1.3 (a TLS 1.3 alert is preceded by a 257 call with 21).
- ChangeCipherSpec (type 20, the byte 0x01): reported as a message only when
  *sent* (TLS 1.2, and TLS 1.3 middlebox compatibility, RFC 8446 §D.4). A *received*
  CCS shows only as a record header of type 20. Events are therefore made from the
  type-20 headers, and a type-20 message that follows one in the same direction is
  not counted twice.
- Never application data (CPython's ``debughelpers.c`` says so; measured: only
  headers of type 23). A client's handshake ends before the TLS 1.3 NewSessionTicket
  arrives; it is reported on the first read after the handshake, like an alert the
  server sends after it (client certificate rejected under TLS 1.3).
- A failed verification still delivers the server's Certificate message (TLS 1.2 and
  1.3), followed by the client's fatal alert (``unknown_ca`` for an untrusted chain).
- A client without a certificate answers a CertificateRequest with an empty
  Certificate message (count 0). A CPython server lists no CA names in its
  CertificateRequest (CPython never calls ``SSL_CTX_set_client_CA_list``), so an
  empty ``certificate_authorities`` is normal; ``openssl s_server -CAfile`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from mqtt_tls_probe.core.lightcert import SHORT_NAMES

Direction = Literal["sent", "received"]

# Content types as passed to the message callback (RFC 8446 §5.1; OpenSSL's
# SSL3_RT_HEADER and SSL3_RT_INNER_CONTENT_TYPE pseudo types).
CHANGE_CIPHER_SPEC: Final = 20
ALERT: Final = 21
HANDSHAKE: Final = 22
APPLICATION_DATA: Final = 23
RECORD_HEADER: Final = 256
INNER_CONTENT_TYPE: Final = 257

MAX_ITEMS: Final = 32  # list entries kept per field; more become a "+N more" entry
MAX_CERTIFICATES: Final = 16  # certificates kept per Certificate message
MAX_TEXT: Final = 512  # characters kept per string
MAX_MESSAGES_PER_RECORD: Final = 64  # handshake messages decoded from one callback
MAX_EXTENSIONS: Final = 64  # extensions interpreted per message; the rest are counted
_MAX_NAME_PARTS: Final = 32  # RDNs (and attributes per RDN) read from one DER name

TLS13: Final = 0x0304
TLS12: Final = 0x0303

VERSION_NAMES: Final[dict[int, str]] = {
    # The spelling of ssl.SSLSocket.version(), so traces and reports agree.
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

HANDSHAKE_NAMES: Final[dict[int, str]] = {
    # RFC 8446 §4 HandshakeType, plus the TLS 1.2 ones (RFC 5246 §7.4) and
    # CertificateStatus (RFC 6066 §8).
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    4: "NewSessionTicket",
    5: "EndOfEarlyData",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    22: "CertificateStatus",
    24: "KeyUpdate",
    254: "MessageHash",
}

ALERT_LEVELS: Final[dict[int, str]] = {1: "warning", 2: "fatal"}

ALERT_DESCRIPTIONS: Final[dict[int, str]] = {
    # RFC 8446 §6 AlertDescription.
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

GROUP_NAMES: Final[dict[int, str]] = {
    # RFC 8446 §4.2.7 NamedGroup; RFC 7919 (ffdhe); RFC 8734 (brainpool TLS 1.3);
    # the hybrid post-quantum groups that recent clients offer first.
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001A: "brainpoolP256r1",
    0x001B: "brainpoolP384r1",
    0x001C: "brainpoolP512r1",
    0x001D: "x25519",
    0x001E: "x448",
    0x001F: "brainpoolP256r1tls13",
    0x0020: "brainpoolP384r1tls13",
    0x0021: "brainpoolP512r1tls13",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
    0x11EB: "SecP256r1MLKEM768",
    0x11EC: "X25519MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
}

CIPHER_SUITE_NAMES: Final[dict[int, str]] = {
    # IANA names (the registry's, as `openssl ciphers -stdname` prints them).
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC0AC: "TLS_ECDHE_ECDSA_WITH_AES_128_CCM",
    0xC0AD: "TLS_ECDHE_ECDSA_WITH_AES_256_CCM",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x00A2: "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256",
    0x00A3: "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384",
    0x0040: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256",
    0x006A: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256",
    0x0032: "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
    0x0038: "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x5600: "TLS_FALLBACK_SCSV",
}

SIGNATURE_SCHEMES: Final[dict[int, str]] = {
    # RFC 8446 §4.2.3 SignatureScheme. TLS 1.2's hash/signature pairs (RFC 5246
    # §7.4.1.4.1) share the code points (0x0401 is sha256+rsa); the DSA pairs, which
    # OpenSSL 3.0 still offers in TLS 1.2, have no TLS 1.3 name: named after the pair.
    0x0201: "rsa_pkcs1_sha1",
    0x0202: "dsa_sha1",
    0x0203: "ecdsa_sha1",
    0x0301: "rsa_pkcs1_sha224",
    0x0302: "dsa_sha224",
    0x0303: "ecdsa_sha224",
    0x0401: "rsa_pkcs1_sha256",
    0x0402: "dsa_sha256",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0501: "rsa_pkcs1_sha384",
    0x0502: "dsa_sha384",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0601: "rsa_pkcs1_sha512",
    0x0602: "dsa_sha512",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256",
    0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
}

_SUITE_CODES: Final[dict[str, int]] = {name: code for code, name in CIPHER_SUITE_NAMES.items()}

EXTENSION_NAMES: Final[dict[int, str]] = {
    # IANA TLS ExtensionType values (RFC 8446 §4.2 and the RFCs it lists).
    0: "server_name",
    1: "max_fragment_length",
    5: "status_request",
    10: "supported_groups",
    11: "ec_point_formats",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    18: "signed_certificate_timestamp",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    27: "compress_certificate",
    28: "record_size_limit",
    35: "session_ticket",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    0xFF01: "renegotiation_info",
}

EXT_SERVER_NAME: Final = 0
EXT_SUPPORTED_GROUPS: Final = 10
EXT_SIGNATURE_ALGORITHMS: Final = 13
EXT_ALPN: Final = 16
EXT_SUPPORTED_VERSIONS: Final = 43
EXT_COOKIE: Final = 44
EXT_CERTIFICATE_AUTHORITIES: Final = 47
EXT_KEY_SHARE: Final = 51

# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_REQUEST_RANDOM: Final = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
)

# Attribute types as cryptography's rfc4514_string writes them (the short names of
# RFC 4514, else the dotted OID), shared with the light certificate reader.
_ATTRIBUTE_NAMES: Final = SHORT_NAMES

# DER string types (X.680) and the codec each one's octets are in.
_DER_STRING_CODECS: Final[dict[int, str]] = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (T61): latin-1 is what is met in practice
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}
_DER_SEQUENCE: Final = 0x30
_DER_SET: Final = 0x31
_DER_OID: Final = 0x06
_DER_INTEGER: Final = 0x02
_DER_VERSION_TAG: Final = 0xA0  # [0] EXPLICIT Version in TBSCertificate

UNPARSEABLE_CERTIFICATE: Final = "unparseable certificate"


# --- results -----------------------------------------------------------------------


@dataclass(frozen=True)
class TraceEvent:
    """One TLS message as one side saw it.

    ``fields`` holds only JSON-ready values (str, int, bool, None, tuples of str);
    the DER certificates of a Certificate message are in ``certificates``, outside
    ``fields``, because they do not belong in a JSON report.
    """

    direction: Direction
    type: str
    version: str
    size: int
    ms: float
    fields: dict[str, object] = field(default_factory=dict, hash=False)
    certificates: tuple[bytes, ...] = field(default=(), repr=False, hash=False)

    def to_json(self) -> dict[str, object]:
        return {
            "direction": self.direction,
            "type": self.type,
            "version": self.version,
            "size": self.size,
            "ms": self.ms,
            "fields": {key: _jsonable(value) for key, value in self.fields.items()},
        }


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Message:
    """A decoded handshake message (or alert): its RFC name and what it says."""

    type: str
    size: int
    fields: dict[str, object] = field(default_factory=dict, hash=False)
    certificates: tuple[bytes, ...] = field(default=(), repr=False, hash=False)


@dataclass(frozen=True)
class RawRecord:
    """One call of the message callback, as the adapter stored it.

    ``content_type`` and ``version`` are the callback's integers (``msg_type`` is
    not kept: the type is read from ``data``); ``at`` is ``time.perf_counter()``.
    """

    direction: Direction
    version: int
    content_type: int
    data: bytes
    at: float


# --- a bounded reader ---------------------------------------------------------------


class _DecodeError(Exception):
    """Input ended early or broke a length rule; never leaves this module."""


class _Reader:
    """A cursor over ``data[start:end]``; every read checks the bound."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = start
        self._end = len(data) if end is None else min(end, len(data))

    @property
    def remaining(self) -> int:
        return max(0, self._end - self._pos)

    def at_end(self) -> bool:
        return self._pos >= self._end

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def take(self, length: int) -> bytes:
        if length > self.remaining:
            raise _DecodeError(f"needs {length} bytes, {self.remaining} left")
        chunk = self._data[self._pos : self._pos + length]
        self._pos += length
        return chunk

    def vector(self, length_width: int) -> _Reader:
        """The sub-reader of a vector prefixed by a ``length_width``-byte length."""
        length = self.uint(length_width)
        if length > self.remaining:
            raise _DecodeError(f"a vector of {length} bytes, {self.remaining} left")
        sub = _Reader(self._data, self._pos, self._pos + length)
        self._pos += length
        return sub

    def partial_vector(self, length_width: int) -> tuple[_Reader, int]:
        """Like ``vector``, but a vector cut short yields what is there and how much is not."""
        length = self.uint(length_width)
        present = min(length, self.remaining)
        sub = _Reader(self._data, self._pos, self._pos + present)
        self._pos += present
        return sub, length - present

    def rest(self) -> bytes:
        return self.take(self.remaining)


# --- names of code points -------------------------------------------------------------


def version_name(code: int) -> str:
    if code in VERSION_NAMES:
        return VERSION_NAMES[code]
    return "GREASE" if _is_grease(code) else f"0x{code & 0xFFFF:04x}"


def _is_grease(code: int) -> bool:
    # RFC 8701: 0x0A0A, 0x1A1A, ... 0xFAFA, reserved values that keep peers tolerant.
    return code & 0x0F0F == 0x0A0A and code >> 8 == code & 0xFF


def _named(table: dict[int, str], code: int) -> str:
    if code in table:
        return table[code]
    return "GREASE" if _is_grease(code) else f"0x{code:04x}"


def group_name(code: int) -> str:
    return _named(GROUP_NAMES, code)


def cipher_suite_name(code: int) -> str:
    return _named(CIPHER_SUITE_NAMES, code)


def cipher_suite_code(name: str) -> int | None:
    """The code point of a name ``cipher_suite_name`` gave (an IANA name or ``0x....``)."""
    if name.startswith("0x"):
        try:
            return int(name, 16)
        except ValueError:
            return None
    return _SUITE_CODES.get(name)


def signature_scheme_name(code: int) -> str:
    return _named(SIGNATURE_SCHEMES, code)


def extension_name(code: int) -> str:
    return _named(EXTENSION_NAMES, code)


def handshake_type_name(code: int) -> str:
    return HANDSHAKE_NAMES.get(code, f"Handshake({code})")


def alert_level_name(code: int) -> str:
    return ALERT_LEVELS.get(code, f"unknown({code})")


def alert_description_name(code: int) -> str:
    return ALERT_DESCRIPTIONS.get(code, f"unknown({code})")


def _text(raw: bytes) -> str:
    return raw[: MAX_TEXT * 4].decode("utf-8", "backslashreplace")[:MAX_TEXT]


class _Capped:
    """A list that keeps ``MAX_ITEMS`` entries and counts the rest."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.total = 0

    def room(self) -> bool:
        """Count one more entry; True when it is to be kept (decode it only then)."""
        self.total += 1
        return len(self.items) < MAX_ITEMS

    def result(self) -> tuple[str, ...]:
        more = self.total - len(self.items)
        return (*self.items, f"+{more} more") if more else tuple(self.items)


def _u16_list(reader: _Reader, name: Callable[[int], str]) -> tuple[str, ...]:
    """A list of 2-byte code points, named."""
    kept = _Capped()
    while reader.remaining >= 2:
        code = reader.uint(2)
        if kept.room():
            kept.items.append(name(code))
    return kept.result()


# --- DER names (RFC 5280 §4.1.2.4, formatted per RFC 4514 §2) ---------------------------


@dataclass(frozen=True)
class _Tlv:
    tag: int
    start: int  # of the whole TLV
    content: int  # first content byte
    end: int  # one past the last content byte


def _der_tlv(data: bytes, pos: int, end: int) -> _Tlv:
    """The DER element at ``pos``; definite lengths of up to 4 bytes only (X.690 §10.1)."""
    if pos + 2 > end:
        raise _DecodeError("DER: short element")
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise _DecodeError("DER: high tag numbers are not used in names")
    content = pos + 2
    length = first
    if first & 0x80:
        count = first & 0x7F
        if not 1 <= count <= 4 or content + count > end:
            raise _DecodeError("DER: bad length")
        length = int.from_bytes(data[content : content + count], "big")
        content += count
    if length > end - content:
        raise _DecodeError("DER: element longer than its container")
    return _Tlv(tag, pos, content, content + length)


def _der_children(data: bytes, parent: _Tlv, limit: int) -> list[_Tlv]:
    """Up to ``limit`` elements inside ``parent``; each step advances at least 2 bytes."""
    children: list[_Tlv] = []
    pos = parent.content
    while pos < parent.end and len(children) < limit:
        child = _der_tlv(data, pos, parent.end)
        children.append(child)
        pos = child.end
    return children


def _expect(element: _Tlv, tag: int) -> _Tlv:
    if element.tag != tag:
        raise _DecodeError(f"DER: tag 0x{element.tag:02x} where 0x{tag:02x} belongs")
    return element


def _oid(raw: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content (X.690 §8.19)."""
    if not raw or len(raw) > 64 or raw[-1] & 0x80:
        raise _DecodeError("DER: bad object identifier")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def _escape_dn_value(value: str) -> str:
    """RFC 4514 §2.4 escaping, the way cryptography's ``rfc4514_string`` does it."""
    if not value:
        return ""
    for char in ("\\", '"', "+", ",", ";", "<", ">"):
        value = value.replace(char, "\\" + char)
    value = value.replace("\0", "\\00")
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def _attribute_value(data: bytes, value: _Tlv) -> str:
    codec = _DER_STRING_CODECS.get(value.tag)
    if codec is None:
        # RFC 4514 §2.4: a value of another type is '#' and its BER encoding in hex.
        return "#" + data[value.start : min(value.end, value.start + MAX_TEXT)].hex()
    raw = data[value.content : min(value.end, value.content + 4 * MAX_TEXT)]
    return _escape_dn_value(raw.decode(codec, "replace"))


def _attribute(data: bytes, element: _Tlv) -> str:
    """AttributeTypeAndValue ::= SEQUENCE { type OID, value ANY }."""
    parts = _der_children(data, _expect(element, _DER_SEQUENCE), 2)
    if len(parts) != 2:
        raise _DecodeError("DER: an attribute needs a type and a value")
    oid = _oid(data[_expect(parts[0], _DER_OID).content : parts[0].end])
    return f"{_ATTRIBUTE_NAMES.get(oid, oid)}={_attribute_value(data, parts[1])}"


def _format_name(data: bytes, name: _Tlv) -> str:
    """Name ::= SEQUENCE OF SET OF AttributeTypeAndValue, last RDN first (RFC 4514 §2.1)."""
    rdns: list[str] = []
    for rdn in _der_children(data, _expect(name, _DER_SEQUENCE), _MAX_NAME_PARTS):
        attributes = _der_children(data, _expect(rdn, _DER_SET), _MAX_NAME_PARTS)
        rdns.append("+".join(_attribute(data, attribute) for attribute in attributes))
    return ",".join(reversed(rdns))[:MAX_TEXT] or "(empty name)"


def dn_from_der(der: bytes) -> str:
    """An RFC 4514 string for a DER Name (as in CertificateRequest's authorities)."""
    try:
        return _format_name(der, _der_tlv(der, 0, len(der)))
    except _DecodeError:
        return "unparseable name"


def certificate_names(der: bytes) -> tuple[str, str]:
    """(subject, issuer) of a DER certificate (RFC 5280 §4.1), without verifying it."""
    try:
        return _tbs_names(der)
    except _DecodeError:
        return UNPARSEABLE_CERTIFICATE, UNPARSEABLE_CERTIFICATE


def _tbs_names(der: bytes) -> tuple[str, str]:
    certificate = _expect(_der_tlv(der, 0, len(der)), _DER_SEQUENCE)
    tbs = _expect(_der_tlv(der, certificate.content, certificate.end), _DER_SEQUENCE)
    # version [0] EXPLICIT (optional), serialNumber, signature, issuer, validity, subject
    items = _der_children(der, tbs, 6)
    if items and items[0].tag == _DER_VERSION_TAG:
        items = items[1:]
    if len(items) < 5 or items[0].tag != _DER_INTEGER:
        raise _DecodeError("not a TBSCertificate")
    return _format_name(der, items[4]), _format_name(der, items[2])


# --- extensions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Extensions:
    """The first ``MAX_EXTENSIONS`` (type, body) pairs of a block, and how many there were."""

    found: list[tuple[int, _Reader]]
    total: int

    def names(self) -> tuple[str, ...]:
        names = [extension_name(kind) for kind, _ in self.found[:MAX_ITEMS]]
        more = self.total - len(names)
        return (*names, f"+{more} more") if more else tuple(names)


def _extensions(reader: _Reader) -> _Extensions:
    """An extensions block (RFC 8446 §4.2); a real hello has about 20."""
    found: list[tuple[int, _Reader]] = []
    total = 0
    block = reader.vector(2)
    while not block.at_end():  # each pass consumes at least 4 bytes
        kind = block.uint(2)
        body = block.vector(2)
        total += 1
        if len(found) < MAX_EXTENSIONS:
            found.append((kind, body))
    return _Extensions(found, total)


def _alpn(body: _Reader) -> tuple[str, ...]:
    """RFC 7301 §3.1 ProtocolNameList."""
    kept = _Capped()
    protocols = body.vector(2)
    while not protocols.at_end():
        name = protocols.vector(1).rest()
        if kept.room():
            kept.items.append(_text(name))
    return kept.result()


def _server_name(body: _Reader) -> str | None:
    """RFC 6066 §3: the host_name (type 0) of the ServerNameList."""
    names = body.vector(2)
    while not names.at_end():
        kind = names.uint(1)
        value = names.vector(2).rest()
        if kind == 0:
            return _text(value)
    return None


def _certificate_authorities(body: _Reader) -> tuple[str, ...]:
    """RFC 8446 §4.2.4 / RFC 5246 §7.4.4: DistinguishedName authorities<3..2^16-1>."""
    kept = _Capped()
    authorities = body.vector(2)
    while not authorities.at_end():
        der = authorities.vector(2).rest()
        if kept.room():
            kept.items.append(dn_from_der(der))
    return kept.result()


# --- handshake message bodies -------------------------------------------------------------


@dataclass
class _Context:
    """What earlier messages of the connection said that changes how to read later ones."""

    version: int | None = None  # negotiated: from the ServerHello
    cipher_suite: int | None = None

    @property
    def tls13(self) -> bool:
        return self.version == TLS13


@dataclass
class _Out:
    """A message being decoded; what is filled in stays when the input runs out."""

    name: str
    fields: dict[str, object] = field(default_factory=dict)
    certificates: list[bytes] = field(default_factory=list)
    certificate_total: int = 0


def _client_hello(body: _Reader, out: _Out) -> None:
    """RFC 8446 §4.1.2 / RFC 5246 §7.4.1.2."""
    out.fields["versions"] = (version_name(body.uint(2)),)  # legacy_version
    out.fields["key_share"] = False
    body.take(32)  # random
    body.vector(1)  # legacy_session_id
    out.fields["cipher_suites"] = body.vector(2).remaining // 2
    body.vector(1)  # legacy_compression_methods
    if body.at_end():  # a TLS 1.2 ClientHello may have no extensions
        return
    extensions = _extensions(body)
    out.fields["extensions"] = extensions.names()
    for kind, ext in extensions.found:
        _client_hello_extension(kind, ext, out.fields)


def _client_hello_extension(kind: int, ext: _Reader, fields: dict[str, object]) -> None:
    if kind == EXT_SUPPORTED_VERSIONS:
        fields["versions"] = _u16_list(ext.vector(1), version_name)  # RFC 8446 §4.2.1
    elif kind == EXT_SUPPORTED_GROUPS:
        fields["groups"] = _u16_list(ext.vector(2), group_name)
    elif kind == EXT_SERVER_NAME:
        fields["server_name"] = _server_name(ext)
    elif kind == EXT_ALPN:
        fields["alpn"] = _alpn(ext)
    elif kind == EXT_KEY_SHARE:
        fields["key_share"] = True
        fields["key_share_groups"] = _key_share_groups(ext)
    elif kind == EXT_SIGNATURE_ALGORITHMS:
        fields["signature_algorithms"] = _u16_list(ext.vector(2), signature_scheme_name)


def _key_share_groups(ext: _Reader) -> tuple[str, ...]:
    """RFC 8446 §4.2.8 client_shares: the groups a key share is offered for."""
    kept = _Capped()
    shares = ext.vector(2)
    while not shares.at_end():
        group = shares.uint(2)
        shares.vector(2)  # key_exchange
        if kept.room():
            kept.items.append(group_name(group))
    return kept.result()


def _server_hello(body: _Reader, out: _Out, context: _Context) -> None:
    """RFC 8446 §4.1.3 / RFC 5246 §7.4.1.3; a special random makes it an HRR."""
    legacy = body.uint(2)
    out.fields["version"] = version_name(legacy)
    context.version = legacy
    retry = body.take(32) == HELLO_RETRY_REQUEST_RANDOM
    if retry:
        out.name = "HelloRetryRequest"
    body.vector(1)  # legacy_session_id_echo
    suite = body.uint(2)
    out.fields["cipher_suite"] = cipher_suite_name(suite)
    context.cipher_suite = suite
    body.uint(1)  # legacy_compression_method
    if body.at_end():
        return
    extensions = _extensions(body)
    out.fields["extensions"] = extensions.names()
    for kind, ext in extensions.found:
        _server_hello_extension(kind, ext, out.fields, context, retry=retry)


def _server_hello_extension(
    kind: int, ext: _Reader, fields: dict[str, object], context: _Context, *, retry: bool
) -> None:
    if kind == EXT_SUPPORTED_VERSIONS:  # RFC 8446 §4.2.1: selected_version
        chosen = ext.uint(2)
        fields["version"] = version_name(chosen)
        context.version = chosen
    elif kind == EXT_KEY_SHARE:
        # An HRR names the group it wants (selected_group); a ServerHello carries
        # one KeyShareEntry, group first (RFC 8446 §4.2.8).
        fields["selected_group" if retry else "key_share_group"] = group_name(ext.uint(2))
    elif kind == EXT_ALPN:  # TLS 1.2 only; TLS 1.3 puts it in EncryptedExtensions
        fields["alpn"] = _first(_alpn(ext))
    elif kind == EXT_COOKIE:
        fields["cookie"] = True


def _first(items: tuple[str, ...]) -> str | None:
    return items[0] if items else None


def _encrypted_extensions(body: _Reader, out: _Out) -> None:
    """RFC 8446 §4.3.1: where a TLS 1.3 server says which ALPN protocol it chose."""
    out.fields["alpn"] = None
    extensions = _extensions(body)
    out.fields["extensions"] = extensions.names()
    for kind, ext in extensions.found:
        if kind == EXT_ALPN:
            out.fields["alpn"] = _first(_alpn(ext))


def _certificate(body: _Reader, out: _Out, context: _Context) -> None:
    """RFC 8446 §4.4.2 (request context, per-entry extensions) / RFC 5246 §7.4.2."""
    if context.tls13 and not body.vector(1).at_end():
        out.fields["request_context"] = True  # post-handshake authentication
    # Read as far as the bytes go: the server's chain is worth having even when the
    # message is cut (the recorder's byte budget, a hostile peer).
    entries, missing = body.partial_vector(3)
    while not entries.at_end():
        der = entries.vector(3).rest()
        out.certificate_total += 1
        if len(out.certificates) < MAX_CERTIFICATES:
            out.certificates.append(der)
        if context.tls13:
            entries.vector(2)  # CertificateEntry.extensions (OCSP status, SCTs)
    if missing:
        raise _DecodeError(f"the certificate list lacks {missing} bytes")


def _certificate_fields(out: _Out) -> None:
    """Count and names of the certificates read, also when the list broke off."""
    names = [certificate_names(der) for der in out.certificates]  # <= MAX_CERTIFICATES
    hidden = out.certificate_total - len(out.certificates)
    more = (f"+{hidden} more",) if hidden else ()
    out.fields["count"] = out.certificate_total
    out.fields["subjects"] = (*(subject for subject, _ in names), *more)
    out.fields["issuers"] = (*(issuer for _, issuer in names), *more)


def _certificate_request(body: _Reader, out: _Out, context: _Context) -> None:
    """RFC 8446 §4.3.2 (extensions 13 and 47) / RFC 5246 §7.4.4 (three lists)."""
    out.fields["certificate_authorities"] = ()
    if context.tls13:
        body.vector(1)  # certificate_request_context
        for kind, ext in _extensions(body).found:
            if kind == EXT_SIGNATURE_ALGORITHMS:
                out.fields["signature_algorithms"] = _u16_list(ext.vector(2), signature_scheme_name)
            elif kind == EXT_CERTIFICATE_AUTHORITIES:
                out.fields["certificate_authorities"] = _certificate_authorities(ext)
        return
    body.vector(1)  # certificate_types (rsa_sign, ecdsa_sign, ...)
    out.fields["signature_algorithms"] = _u16_list(body.vector(2), signature_scheme_name)
    out.fields["certificate_authorities"] = _certificate_authorities(body)


def _certificate_verify(body: _Reader, out: _Out) -> None:
    """RFC 8446 §4.4.3 / RFC 5246 §4.7 digitally-signed: the algorithm comes first."""
    out.fields["signature_algorithm"] = signature_scheme_name(body.uint(2))


def _server_key_exchange(body: _Reader, out: _Out, context: _Context) -> None:
    """RFC 8422 §5.4 ECDHE parameters: curve_type 3 (named_curve), group, key, signature.

    Other key exchanges (DHE, PSK) lay out their parameters differently: size only.
    """
    suite = context.cipher_suite
    if suite is not None and "ECDHE" not in cipher_suite_name(suite):
        return
    if body.uint(1) != 3:
        return
    out.fields["group"] = group_name(body.uint(2))
    body.vector(1)  # the ephemeral public key
    out.fields["signature_algorithm"] = signature_scheme_name(body.uint(2))


def _new_session_ticket(body: _Reader, out: _Out) -> None:
    """RFC 8446 §4.6.1 and RFC 5077 §3.3 both start with the lifetime in seconds."""
    out.fields["lifetime_s"] = body.uint(4)


def _key_update(body: _Reader, out: _Out) -> None:
    """RFC 8446 §4.6.3: 1 is update_requested."""
    out.fields["update_requested"] = body.uint(1) == 1


def _decode_body(kind: int, body: _Reader, out: _Out, context: _Context) -> None:
    if kind == 1:
        _client_hello(body, out)
    elif kind == 2:
        _server_hello(body, out, context)
    elif kind == 4:
        _new_session_ticket(body, out)
    elif kind == 8:
        _encrypted_extensions(body, out)
    elif kind == 11:
        _certificate(body, out, context)
    elif kind == 12:
        _server_key_exchange(body, out, context)
    elif kind == 13:
        _certificate_request(body, out, context)
    elif kind == 15:
        _certificate_verify(body, out)
    elif kind == 24:
        _key_update(body, out)


# --- messages ---------------------------------------------------------------------------


def _decode_one(reader: _Reader, context: _Context) -> Message:
    """One handshake message: type (1 byte), length (3 bytes), body (RFC 8446 §4)."""
    available = reader.remaining
    kind = reader.uint(1)
    out = _Out(handshake_type_name(kind))
    if reader.remaining < 3:
        reader.rest()
        out.fields["error"] = "truncated: the message length is missing"
        return Message(out.name, available, out.fields)
    declared = reader.uint(3)
    present = min(declared, reader.remaining)
    body = _Reader(reader.take(present))
    try:
        _decode_body(kind, body, out, context)
    except _DecodeError as exc:
        out.fields["error"] = f"malformed {out.name}: {exc}"
    if present < declared:
        out.fields["error"] = f"truncated: {declared} bytes announced, {present} present"
    if kind == 11:
        _certificate_fields(out)
    return Message(out.name, 4 + present, out.fields, tuple(out.certificates))


def _decode_handshake(data: bytes, context: _Context) -> list[Message]:
    if not data:
        return [Message("Handshake", 0, {"error": "empty handshake message"})]
    reader = _Reader(data)
    messages: list[Message] = []
    # OpenSSL hands over one message per call; more are decoded all the same.
    while not reader.at_end() and len(messages) < MAX_MESSAGES_PER_RECORD:
        messages.append(_decode_one(reader, context))
    return messages


def decode_handshake(
    data: bytes, *, version: int | None = None, cipher_suite: int | None = None
) -> list[Message]:
    """The handshake messages in ``data`` (normally exactly one).

    ``version`` is the negotiated version (0x0303, 0x0304): Certificate and
    CertificateRequest differ between TLS 1.2 and 1.3; ``cipher_suite`` tells
    whether a ServerKeyExchange holds ECDHE parameters.
    """
    return _decode_handshake(data, _Context(version, cipher_suite))


def decode_alert(data: bytes) -> Message:
    """RFC 8446 §6 / RFC 5246 §7.2: level, description (2 bytes)."""
    fields: dict[str, object] = {}
    if len(data) >= 1:
        fields["level"] = alert_level_name(data[0])
    if len(data) >= 2:
        fields["description"] = alert_description_name(data[1])
        fields["code"] = data[1]
    if len(data) != 2:
        fields["error"] = f"an alert is 2 bytes, got {len(data)}"
    return Message("Alert", len(data), fields)


def decode_change_cipher_spec(data: bytes) -> Message:
    """RFC 5246 §7.1: a single byte 1 (RFC 8446 §5: also sent for compatibility)."""
    fields: dict[str, object] = {} if data == b"\x01" else {"error": "not the byte 1"}
    return Message("ChangeCipherSpec", len(data), fields)


# --- the callback stream of one connection ------------------------------------------------


def _event_version(context: _Context, record: RawRecord) -> str:
    # The callback's version is unreliable before the ServerHello (see above).
    return version_name(context.version if context.version is not None else record.version)


@dataclass
class _Builder:
    start: float
    context: _Context = field(default_factory=_Context)
    # Per direction: whether the previous record was the header of a CCS record.
    after_ccs_header: dict[str, bool] = field(default_factory=dict)
    events: list[TraceEvent] = field(default_factory=list)

    def add(self, record: RawRecord) -> None:
        previous_was_ccs_header = self.after_ccs_header.get(record.direction, False)
        self.after_ccs_header[record.direction] = False
        data = record.data
        if record.content_type == RECORD_HEADER:
            if len(data) >= 5 and data[0] == CHANGE_CIPHER_SPEC:
                self.after_ccs_header[record.direction] = True
                size = int.from_bytes(data[3:5], "big")
                self._emit(record, Message("ChangeCipherSpec", size))
        elif record.content_type == CHANGE_CIPHER_SPEC:
            if not previous_was_ccs_header:  # else counted from its header already
                self._emit(record, decode_change_cipher_spec(data))
        elif record.content_type == ALERT:
            self._emit(record, decode_alert(data))
        elif record.content_type == HANDSHAKE:
            for message in _decode_handshake(data, self.context):
                self._emit(record, message)
        # INNER_CONTENT_TYPE (TLS 1.3) repeats what the next call shows: skipped.

    def _emit(self, record: RawRecord, message: Message) -> None:
        self.events.append(
            TraceEvent(
                direction=record.direction,
                type=message.type,
                version=_event_version(self.context, record),
                size=message.size,
                ms=round((record.at - self.start) * 1000, 3),
                fields=message.fields,
                certificates=message.certificates,
            )
        )


def build_events(records: Iterable[RawRecord], start: float) -> list[TraceEvent]:
    """The events of one connection from its callback records, in order."""
    builder = _Builder(start)
    for record in records:
        builder.add(record)
    return builder.events


# --- what a trace says, for classification ------------------------------------------------


@dataclass(frozen=True)
class HandshakeSummary:
    """Answers about one connection's trace, from either side's point of view.

    The side that sent the ClientHello is the client; without one, the recording side
    is taken to be the client (the probe is).
    """

    events: tuple[TraceEvent, ...]

    @classmethod
    def of(cls, events: Iterable[TraceEvent]) -> HandshakeSummary:
        return cls(tuple(events))

    def _from_server(self) -> Direction:
        for event in self.events:
            if event.type == "ClientHello":
                return "received" if event.direction == "sent" else "sent"
        return "received"

    def _server_messages(self, kind: str) -> list[TraceEvent]:
        side = self._from_server()
        return [event for event in self.events if event.type == kind and event.direction == side]

    def server_requested_client_certificate(self) -> bool:
        return bool(self._server_messages("CertificateRequest"))

    def server_certificates(self) -> tuple[bytes, ...]:
        """The DER certificates of the server's Certificate message, as sent."""
        messages = self._server_messages("Certificate")
        return messages[0].certificates if messages else ()

    def negotiated_version(self) -> str | None:
        hellos = self._server_messages("ServerHello")
        version = hellos[-1].fields.get("version") if hellos else None
        return version if isinstance(version, str) else None

    def received_alert(self) -> tuple[str, str] | None:
        return self._alert("received")

    def sent_alert(self) -> tuple[str, str] | None:
        return self._alert("sent")

    def _alert(self, direction: Direction) -> tuple[str, str] | None:
        """(level, description) of the first fatal alert, else of the first alert."""
        alerts = [e for e in self.events if e.type == "Alert" and e.direction == direction]
        fatal = [e for e in alerts if e.fields.get("level") == "fatal"]
        for event in fatal or alerts:
            level, description = event.fields.get("level"), event.fields.get("description")
            if isinstance(level, str) and isinstance(description, str):
                return level, description
        return None
