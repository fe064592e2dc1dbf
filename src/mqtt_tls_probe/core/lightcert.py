"""The facts of a certificate the text report needs, read without ``cryptography``.

Rule: ``read_light`` either returns facts that equal, field for field, what
``core.certinfo`` computes with ``cryptography`` for the same DER, or returns
None. It accepts a conservative profile only (X.509 v3, common key and signature
algorithms, a known set of extensions, DER as ``core.der`` reads it) and refuses
everything else, including what ``cryptography`` would refuse or warn about; the
caller then takes the ``cryptography`` path. Pure: no I/O, no clock, stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from mqtt_tls_probe.aio import QUICKSTART_CA_CN
from mqtt_tls_probe.core import der
from mqtt_tls_probe.core.der import DerError, Element

# AlgorithmIdentifier DER (exact bytes) -> (dotted OID, cryptography's ``ObjectIdentifier._name``).
# Exact bytes keep parameter variants (absent vs NULL, other PSS parameters) off the light path.
_SIGNATURE_ALGORITHMS: dict[bytes, tuple[str, str]] = {
    bytes.fromhex("300906072a8648ce3d0401"): ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    bytes.fromhex("300a06082a8648ce3d040302"): ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    bytes.fromhex("300a06082a8648ce3d040303"): ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    bytes.fromhex("300a06082a8648ce3d040304"): ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    bytes.fromhex("300d06092a864886f70d0101050500"): (
        "1.2.840.113549.1.1.5",
        "sha1WithRSAEncryption",
    ),
    bytes.fromhex("300d06092a864886f70d01010b0500"): (
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption",
    ),
    bytes.fromhex("300d06092a864886f70d01010c0500"): (
        "1.2.840.113549.1.1.12",
        "sha384WithRSAEncryption",
    ),
    bytes.fromhex("300d06092a864886f70d01010d0500"): (
        "1.2.840.113549.1.1.13",
        "sha512WithRSAEncryption",
    ),
    # RSASSA-PSS with SHA-256/384/512, MGF1 with the same hash, salt = hash length
    # (the encodings cryptography's verifier permits, policy/mod.rs RSASSA_PSS_SHA*).
    bytes.fromhex(
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886"
        "f70d010108300d06096086480165030402010500a203020120"
    ): ("1.2.840.113549.1.1.10", "rsassaPss"),
    bytes.fromhex(
        "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886"
        "f70d010108300d06096086480165030402020500a203020130"
    ): ("1.2.840.113549.1.1.10", "rsassaPss"),
    bytes.fromhex(
        "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886"
        "f70d010108300d06096086480165030402030500a203020140"
    ): ("1.2.840.113549.1.1.10", "rsassaPss"),
    bytes.fromhex("300506032b6570"): ("1.3.101.112", "ed25519"),
    bytes.fromhex("300506032b6571"): ("1.3.101.113", "ed448"),
}

# SubjectPublicKeyInfo AlgorithmIdentifier DER (exact bytes).
SPKI_RSA = bytes.fromhex("300d06092a864886f70d0101010500")
SPKI_P256 = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")
SPKI_P384 = bytes.fromhex("301006072a8648ce3d020106052b81040022")
SPKI_P521 = bytes.fromhex("301006072a8648ce3d020106052b81040023")
_SPKI_ED25519 = bytes.fromhex("300506032b6570")
_SPKI_ED448 = bytes.fromhex("300506032b6571")

# NIST prime curves (a = -3): name, field prime p, coefficient b, coordinate size.
_P256 = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P384 = 2**384 - 2**128 - 2**96 + 2**32 - 1
_P521 = 2**521 - 1
_CURVES: dict[bytes, tuple[str, int, int, int]] = {
    SPKI_P256: (
        "EC P-256",
        _P256,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        32,
    ),
    SPKI_P384: (
        "EC P-384",
        _P384,
        int(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
            "C656398D8A2ED19D2A85C8EDD3EC2AEF",
            16,
        ),
        48,
    ),
    SPKI_P521: (
        "EC P-521",
        _P521,
        int(
            "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1"
            "09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B50"
            "3F00",
            16,
        ),
        66,
    ),
}

BASIC_CONSTRAINTS = "2.5.29.19"
KEY_USAGE = "2.5.29.15"
EXTENDED_KEY_USAGE = "2.5.29.37"
SUBJECT_ALT_NAME = "2.5.29.17"
SUBJECT_KEY_ID = "2.5.29.14"
AUTHORITY_KEY_ID = "2.5.29.35"
SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
_EKU_NAMES = {SERVER_AUTH: "serverAuth", CLIENT_AUTH: "clientAuth"}
# Bit i of keyUsage -> OpenSSL's name, as certinfo._key_usage_names lists them.
_KEY_USAGE_BITS = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)

# cryptography's x509/name.py: _NAMEOID_TO_NAME (RFC 4514 short names).
SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}
COMMON_NAME = "2.5.4.3"
# cryptography's x509/name.py: _NAMEOID_LENGTH_LIMIT, in UTF-8 bytes; outside them it warns.
_LENGTH_LIMITS = {"2.5.4.6": (2, 2), "1.3.6.1.4.1.311.60.2.1.3": (2, 2), COMMON_NAME: (1, 64)}
_NAME_STRING_TAGS = frozenset(
    {der.UTF8_STRING, der.PRINTABLE_STRING, der.IA5_STRING, der.BMP_STRING}
)
_MAX_SERIAL_OCTETS = 20
_SECONDS_PER_DAY = 86400


class LightName(NamedTuple):
    """A Name: its DER and its RDNs in certificate order, each a tuple of (OID, value)."""

    der: bytes
    rdns: tuple[tuple[tuple[str, str], ...], ...]


class LightCert(NamedTuple):
    """What the text report and its findings read of one certificate."""

    der: bytes
    sha256: str
    version: int  # as encoded: 2 means v3
    serial: int
    signature_oid: str
    signature_algorithm: str
    signature_algorithm_der: bytes  # the AlgorithmIdentifier, exact bytes
    subject: LightName
    issuer: LightName
    subject_text: str
    issuer_text: str
    common_name: str | None
    not_before: datetime
    not_after: datetime
    times_as_rfc5280: bool  # UTCTime before 2050, GeneralizedTime from 2050
    key_description: str
    spki_algorithm_der: bytes
    basic_constraints: tuple[bool, int | None, bool] | None  # (ca, path_length, critical)
    key_usage: tuple[str, ...] | None
    extended_key_usage: tuple[str, ...] | None  # names as certinfo._eku_names
    eku_oids: tuple[str, ...] | None
    sans: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[bytes, ...]
    ski: bytes | None
    aki: bytes | None
    extensions: tuple[tuple[str, bool], ...]  # (OID, critical), in certificate order


def read_light(data: bytes) -> LightCert | None:
    """The facts of the DER certificate ``data``, or None when outside the profile."""
    try:
        return _read(data)
    except (DerError, IndexError, ValueError):
        return None


def _read(data: bytes) -> LightCert | None:
    cert = der.read_single(data, der.SEQUENCE)
    parts = der.children(data, cert, 3)
    if len(parts) != 3:
        return None
    tbs, outer_algorithm, signature = parts
    der.expect(tbs, der.SEQUENCE)
    signature_bits, _ = der.bit_string(data, signature)
    if not signature_bits or signature.value(data)[0] != 0:
        return None
    fields = der.children(data, tbs, 8)
    if len(fields) != 8:  # version, serial, sig, issuer, validity, subject, spki, [3]
        return None
    version_tag, serial_el, inner_algorithm, issuer_el, validity, subject_el, spki, ext_tag = fields
    if version_tag.tag != 0xA0 or ext_tag.tag != 0xA3:
        return None
    version_items = der.children(data, version_tag, 1)
    if len(version_items) != 1 or der.integer(data, version_items[0]) != 2:
        return None
    serial = der.integer(data, serial_el)
    if serial <= 0 or serial_el.end - serial_el.content > _MAX_SERIAL_OCTETS:
        return None
    algorithm_der = data[inner_algorithm.start : inner_algorithm.end]
    if algorithm_der != data[outer_algorithm.start : outer_algorithm.end]:
        return None
    known = _SIGNATURE_ALGORITHMS.get(algorithm_der)
    if known is None:
        return None
    issuer = _name(data, issuer_el)
    subject = _name(data, subject_el)
    if issuer is None or subject is None:
        return None
    times = der.children(data, der.expect(validity, der.SEQUENCE), 2)
    if len(times) != 2:
        return None
    not_before, not_after = der.time(data, times[0]), der.time(data, times[1])
    rfc5280_times = all(
        (t.tag == der.UTC_TIME) == (moment.year < 2050)
        for t, moment in ((times[0], not_before), (times[1], not_after))
    )
    key = _key(data, spki)
    if key is None:
        return None
    key_text, spki_algorithm = key
    extensions = _extensions(data, ext_tag)
    issuer_text, subject_text = _rfc4514(issuer.rdns), _rfc4514(subject.rdns)
    return LightCert(
        der=data,
        sha256=hashlib.sha256(data).hexdigest(),
        version=2,
        serial=serial,
        signature_oid=known[0],
        signature_algorithm=known[1],
        signature_algorithm_der=algorithm_der,
        subject=subject,
        issuer=issuer,
        subject_text=subject_text or "(empty name)",
        issuer_text=issuer_text or "(empty name)",
        common_name=next(
            (value for rdn in subject.rdns for oid, value in rdn if oid == COMMON_NAME), None
        ),
        not_before=not_before,
        not_after=not_after,
        times_as_rfc5280=rfc5280_times,
        key_description=key_text,
        spki_algorithm_der=spki_algorithm,
        basic_constraints=extensions.basic_constraints,
        key_usage=extensions.key_usage,
        extended_key_usage=(
            None
            if extensions.eku is None
            else tuple(_EKU_NAMES.get(oid, oid) for oid in extensions.eku)
        ),
        eku_oids=extensions.eku,
        sans=extensions.sans,
        dns_names=extensions.dns,
        ip_addresses=extensions.ips,
        ski=extensions.ski,
        aki=extensions.aki,
        extensions=extensions.listed,
    )


# --- names ---------------------------------------------------------------------


def _name(data: bytes, element: Element) -> LightName | None:
    """A Name whose values are strings cryptography reads without a warning, or None."""
    rdns = []
    for rdn in der.children(data, der.expect(element, der.SEQUENCE)):
        members = der.children(data, der.expect(rdn, der.SET))
        if not members:
            return None  # cryptography: "a relative distinguished name cannot be empty"
        encodings = [data[m.start : m.end] for m in members]
        if encodings != sorted(encodings):
            return None  # not DER's SET OF order
        attributes = []
        for member in members:
            pair = der.children(data, der.expect(member, der.SEQUENCE), 2)
            if len(pair) != 2 or pair[1].tag not in _NAME_STRING_TAGS:
                return None
            oid = der.oid(data, pair[0])
            value = der.string(data, pair[1])
            limits = _LENGTH_LIMITS.get(oid)
            if limits is not None and not limits[0] <= len(value.encode("utf-8")) <= limits[1]:
                return None
            attributes.append((oid, value))
        if len(set(attributes)) != len(attributes):
            return None  # cryptography: "duplicate attributes are not allowed"
        rdns.append(tuple(attributes))
    return LightName(data[element.start : element.end], tuple(rdns))


def _rfc4514(rdns: Sequence[tuple[tuple[str, str], ...]]) -> str:
    """cryptography's ``Name.rfc4514_string``: RDNs last to first, '+' inside an RDN."""
    return ",".join(
        "+".join(f"{SHORT_NAMES.get(oid, oid)}={escape_dn_value(value)}" for oid, value in rdn)
        for rdn in reversed(rdns)
    )


def escape_dn_value(value: str) -> str:
    """RFC 4514 2.4 escaping as cryptography's ``_escape_dn_value`` does it (x509/name.py)."""
    if not value:
        return ""
    out = []
    for char in value:
        if char in '\\"+,;<>':
            out.append("\\" + char)
        elif char == "\0":
            out.append("\\00")
        else:
            out.append(char)
    text = "".join(out)
    # Checked on the escaped text, as cryptography does: a lone space is escaped once, as
    # a trailing space; a leading '#' or space (of a longer value) gets a backslash.
    if text[0] == "#" or (text[0] == " " and len(text) > 1):
        text = "\\" + text
    if text[-1] == " ":
        text = text[:-1] + "\\ "
    return text


# --- keys ----------------------------------------------------------------------


def _key(data: bytes, spki: Element) -> tuple[str, bytes] | None:
    """certinfo.key_description's text and the SPKI AlgorithmIdentifier, or None."""
    parts = der.children(data, der.expect(spki, der.SEQUENCE), 2)
    if len(parts) != 2:
        return None
    algorithm = data[parts[0].start : parts[0].end]
    bits, unused = der.bit_string(data, parts[1])
    if unused:
        return None
    curve = _CURVES.get(algorithm)
    if curve is not None:
        return (curve[0], algorithm) if _on_curve(bits, curve) else None
    if algorithm == SPKI_RSA:
        size = _rsa_bits(bits)
        return None if size is None else (f"RSA {size}", algorithm)
    if algorithm == _SPKI_ED25519 and len(bits) == 32:
        return "Ed25519", algorithm
    if algorithm == _SPKI_ED448 and len(bits) == 57:
        return "Ed448", algorithm
    return None


def _on_curve(point: bytes, curve: tuple[str, int, int, int]) -> bool:
    """An uncompressed point on the curve (what OpenSSL requires to load the key)."""
    _, p, b, size = curve
    if len(point) != 1 + 2 * size or point[0] != 4:
        return False
    x = int.from_bytes(point[1 : 1 + size], "big")
    y = int.from_bytes(point[1 + size :], "big")
    if x >= p or y >= p:
        return False
    return (y * y - (x * x * x - 3 * x + b)) % p == 0


def _rsa_bits(bits: bytes) -> int | None:
    """The modulus size of an RSAPublicKey, within sizes OpenSSL loads without question."""
    key = der.read_single(bits, der.SEQUENCE)
    items = der.children(bits, key, 2)
    if len(items) != 2:
        return None
    modulus, exponent = der.integer(bits, items[0]), der.integer(bits, items[1])
    size = modulus.bit_length()
    if modulus <= 0 or modulus % 2 == 0 or not 1024 <= size <= 16384:
        return None
    if exponent < 3 or exponent % 2 == 0 or exponent >= modulus:
        return None
    return size


# --- extensions ----------------------------------------------------------------


class _Extensions(NamedTuple):
    basic_constraints: tuple[bool, int | None, bool] | None
    key_usage: tuple[str, ...] | None
    eku: tuple[str, ...] | None
    sans: tuple[str, ...]
    dns: tuple[str, ...]
    ips: tuple[bytes, ...]
    ski: bytes | None
    aki: bytes | None
    listed: tuple[tuple[str, bool], ...]


_KNOWN_EXTENSIONS = frozenset(
    {
        BASIC_CONSTRAINTS,
        KEY_USAGE,
        EXTENDED_KEY_USAGE,
        SUBJECT_ALT_NAME,
        SUBJECT_KEY_ID,
        AUTHORITY_KEY_ID,
    }
)


def _extensions(data: bytes, wrapper: Element) -> _Extensions:
    """The six extensions this reader knows; any other extension (critical or not) raises.

    cryptography parses many more extensions eagerly and may refuse malformed ones;
    an extension unknown here is never known to be harmless, so it ends the light path.
    Refusals raise ``DerError``: ``read_light`` turns them into None.
    """
    values, listed = _extension_values(data, wrapper)
    basic = None
    if BASIC_CONSTRAINTS in values:
        value, critical = values[BASIC_CONSTRAINTS]
        ca, path_length = _basic_constraints(value)
        basic = (ca, path_length, critical)
    usage = _key_usage(values[KEY_USAGE][0]) if KEY_USAGE in values else None
    eku = _eku(values[EXTENDED_KEY_USAGE][0]) if EXTENDED_KEY_USAGE in values else None
    names: tuple[tuple[str, ...], tuple[str, ...], tuple[bytes, ...]] = ((), (), ())
    if SUBJECT_ALT_NAME in values:
        names = _sans(values[SUBJECT_ALT_NAME][0])
    ski = None
    if SUBJECT_KEY_ID in values:
        ski_value = values[SUBJECT_KEY_ID][0]
        ski = der.octet_string(ski_value, der.read_single(ski_value, der.OCTET_STRING))
    aki = _aki(values[AUTHORITY_KEY_ID][0]) if AUTHORITY_KEY_ID in values else None
    return _Extensions(basic, usage, eku, names[0], names[1], names[2], ski, aki, tuple(listed))


def _extension_values(
    data: bytes, wrapper: Element
) -> tuple[dict[str, tuple[bytes, bool]], list[tuple[str, bool]]]:
    """Each extension's value and criticality by OID, and the (OID, critical) list."""
    inner = der.children(data, wrapper, 1)
    if len(inner) != 1:
        raise DerError("[3] must hold one SEQUENCE")
    items = der.children(data, der.expect(inner[0], der.SEQUENCE))
    if not items:
        raise DerError("empty extensions")
    values: dict[str, tuple[bytes, bool]] = {}
    listed = []
    for item in items:
        fields = der.children(data, der.expect(item, der.SEQUENCE), 3)
        if len(fields) not in (2, 3):
            raise DerError("malformed extension")
        # DER forbids encoding the DEFAULT FALSE (cryptography refuses it too).
        if len(fields) == 3 and not der.boolean(data, fields[1]):
            raise DerError("critical FALSE encoded")
        critical = len(fields) == 3
        oid = der.oid(data, fields[0])
        if oid in values:
            raise DerError("duplicate extension")
        if oid not in _KNOWN_EXTENSIONS:
            raise DerError(f"extension {oid} is not on the light path")
        values[oid] = (der.octet_string(data, fields[-1]), critical)
        listed.append((oid, critical))
    return values, listed


def _basic_constraints(value: bytes) -> tuple[bool, int | None]:
    seq = der.read_single(value, der.SEQUENCE)
    items = der.children(value, seq)
    ca = False
    path_length = None
    if items and items[0].tag == der.BOOLEAN:
        if not der.boolean(value, items[0]):
            raise DerError("cA FALSE encoded")
        ca = True
        items = items[1:]
    if items:
        if len(items) != 1:
            raise DerError("malformed basicConstraints")
        path_length = der.integer(value, items[0])
        # cryptography: path_length must be None when ca is False, not negative, and
        # it is read as a u64 (a larger one fails to load).
        if path_length < 0 or path_length >= 1 << 64 or not ca:
            raise DerError("pathLenConstraint cryptography refuses")
    return ca, path_length


def _key_usage(value: bytes) -> tuple[str, ...]:
    bits, _ = der.bit_string(value, der.read_single(value, der.BIT_STRING))
    if not bits or len(bits) > 2 or (len(bits) == 2 and bits[1] & 0x7F):
        raise DerError("keyUsage outside the light profile")
    flags = int.from_bytes(bits.ljust(2, b"\0"), "big")
    set_bits = [i for i in range(9) if flags & (0x8000 >> i)]
    agreement = 4 in set_bits
    if not agreement and (7 in set_bits or 8 in set_bits):
        # cryptography's KeyUsage refuses encipher/decipherOnly without keyAgreement.
        raise DerError("encipherOnly or decipherOnly without keyAgreement")
    return tuple(_KEY_USAGE_BITS[i] for i in set_bits)


def _eku(value: bytes) -> tuple[str, ...]:
    seq = der.read_single(value, der.SEQUENCE)
    oids = tuple(der.oid(value, item) for item in der.children(value, seq))
    if not oids:
        raise DerError("empty extendedKeyUsage")
    return oids


def _sans(value: bytes) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bytes, ...]]:
    """certinfo.subject_alt_names (DNS, then IP, then URI), the DNS names and raw IPs."""
    seq = der.read_single(value, der.SEQUENCE)
    items = der.children(value, seq)
    if not items:
        raise DerError("empty subjectAltName")
    dns: list[str] = []
    uris: list[str] = []
    ips: list[bytes] = []
    for item in items:
        body = item.value(value)
        if item.tag in (0x81, 0x82, 0x86):  # rfc822Name, dNSName, URI: IA5String
            if not all(0x20 <= byte < 0x7F for byte in body):
                raise DerError("IA5String outside printable ASCII")
            text = body.decode("ascii")
            if item.tag == 0x82:
                dns.append(text)
            elif item.tag == 0x86:
                uris.append(text)
        elif item.tag == 0x87:
            if len(body) not in (4, 16):
                raise DerError("iPAddress of a length other than 4 or 16")
            ips.append(body)
        else:
            raise DerError("a general name kind not on the light path")
    shown = [f"DNS:{name}" for name in dns]
    if ips:
        import ipaddress  # only when an IP SAN is present: it costs ~1 ms to import

        shown += [f"IP:{ipaddress.ip_address(ip)}" for ip in ips]
    shown += [f"URI:{uri}" for uri in uris]
    return tuple(shown), tuple(dns), tuple(ips)


def _aki(value: bytes) -> bytes:
    """The keyIdentifier of an AKI that holds only that (other fields raise)."""
    seq = der.read_single(value, der.SEQUENCE)
    items = der.children(value, seq)
    if len(items) != 1 or items[0].tag != 0x80:
        raise DerError("authorityKeyIdentifier outside the light profile")
    return items[0].value(value)


# --- certinfo's helpers, on light facts ------------------------------------------


def is_ca(cert: LightCert) -> bool:
    return cert.basic_constraints is not None and cert.basic_constraints[0]


def can_sign_certificates(cert: LightCert) -> bool:
    """True when nothing forbids ``cert`` to issue certificates (RFC 5280 4.2.1.3)."""
    return cert.key_usage is None or "keyCertSign" in cert.key_usage


def days_left(cert: LightCert, now: datetime) -> int:
    """Whole days until ``not_after``; negative once expired."""
    return int((cert.not_after - now).total_seconds() // _SECONDS_PER_DAY)


def is_quickstart_ca(cert: LightCert) -> bool:
    return cert.common_name == QUICKSTART_CA_CN


# --- PEM -----------------------------------------------------------------------

_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_WHITE = b" \t\r\n"


def pem_blocks(data: bytes) -> list[bytes] | None:
    """The DER of each CERTIFICATE block of a PEM file, or None when anything is odd.

    Odd: no block, text other than white space outside the blocks (other PEM
    labels included), a marker that does not start a line or is followed by
    more than white space on it, a body that is not lines of strict, padded base64.
    """
    blocks: list[bytes] = []
    pos = 0
    while True:
        begin = data.find(_BEGIN, pos)
        if begin < 0:
            if data[pos:].strip(_WHITE):
                return None
            break
        if data[pos:begin].strip(_WHITE) or (begin and data[begin - 1 : begin] != b"\n"):
            return None
        start = begin + len(_BEGIN)
        end = data.find(_END, start)
        if end < 0 or data[end - 1 : end] != b"\n":
            return None
        decoded = _pem_body(data[start:end])
        if decoded is None:
            return None
        blocks.append(decoded)
        pos = end + len(_END)
        line_end = data.find(b"\n", pos)
        if data[pos : len(data) if line_end < 0 else line_end].strip(_WHITE):
            return None  # something after END on its line
    return blocks or None


def _pem_body(body: bytes) -> bytes | None:
    if not body.startswith((b"\n", b"\r\n")) or not body.endswith(b"\n"):
        return None
    lines = [line[:-1] if line.endswith(b"\r") else line for line in body.split(b"\n")[1:-1]]
    if not all(lines):
        return None  # a blank line inside the body
    text = b"".join(lines)
    if not text or len(text) % 4:
        return None
    stripped = text.rstrip(b"=")
    if len(text) - len(stripped) > 2 or stripped.translate(None, _BASE64):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None
