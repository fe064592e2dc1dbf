"""Read certificates and describe them the way an operator wants to see them.

Rules:
- pure functions of certificates and an injected ``now``; no I/O;
- OpenSSL decides whether a certificate is trusted; ``cryptography`` only
  describes and explains. It is stricter than OpenSSL and parses parts of a
  certificate lazily (``cert.extensions`` may raise long after loading), so
  every certificate is read in full once, by ``load_der`` / ``read_certificates``:
  what it cannot read becomes an ``Unparseable`` (described as such, its DER
  fingerprinted) and never reaches the checks;
- no warning of ``cryptography`` reaches the terminal: a negative serial
  number is a finding instead.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID

from mqtt_tls_probe.aio import QUICKSTART_CA_CN
from mqtt_tls_probe.core import cert_findings
from mqtt_tls_probe.core.moments import days_until
from mqtt_tls_probe.model import CertInfo, Finding, FindingCode, Unparseable

_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}
# Attribute of x509.KeyUsage -> the name OpenSSL prints.
_KEY_USAGE_NAMES = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)
# Only defined when keyAgreement is set (reading them otherwise raises).
_AGREEMENT_ONLY_NAMES = (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
# What cryptography raises for a part of a certificate it cannot parse.
_PARSE_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)
_UNREADABLE = (*_PARSE_ERRORS, UnsupportedAlgorithm)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL
)

Loaded = x509.Certificate | Unparseable


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """cryptography warns, with a source line, of a negative serial, on load and on every
    read of ``serial_number`` (a finding here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def serial_number(cert: x509.Certificate) -> int:
    with quiet():
        return cert.serial_number


def parse_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data``: PEM (any number) or one DER certificate.

    Returns an empty list when there is none; raises ``ValueError`` for PEM
    blocks that are not valid certificates. ``read_certificates`` keeps the
    others when one cannot be read.
    """
    with quiet():
        if b"-----BEGIN" in data:
            if b"-----BEGIN CERTIFICATE-----" not in data:
                return []
            return x509.load_pem_x509_certificates(data)
        if data[:1] == b"\x30":  # an ASN.1 SEQUENCE: try DER
            return [x509.load_der_x509_certificate(data)]
    return []


def read_certificates(data: bytes) -> list[Loaded]:
    """Every certificate in ``data`` (PEM blocks, or one DER certificate), each read on its own.

    A certificate ``cryptography`` cannot read in full is an ``Unparseable``
    in its place; an empty list means ``data`` holds no certificate at all.
    """
    if b"-----BEGIN" not in data:
        return [load_der(data)] if data[:1] == b"\x30" else []
    found: list[Loaded] = []
    for block in _PEM_BLOCK.findall(data):
        try:
            der = base64.b64decode(block, validate=False)
        except binascii.Error as exc:
            found.append(Unparseable(b"", f"its PEM block is not valid base64 ({exc})"))
            continue
        found.append(load_der(der))
    return found


def load_der(der: bytes) -> Loaded:
    """One DER certificate, read in full: a certificate, or why cryptography cannot read it."""
    try:
        with quiet():
            cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return Unparseable(der, str(exc))
    problem = unreadable_part(cert)
    return cert if problem is None else Unparseable(der, problem, cert)


def unreadable_part(cert: x509.Certificate) -> str | None:
    """What cryptography fails to parse in ``cert`` (lazily parsed parts included), or None."""
    try:
        _ = cert.extensions
        _ = cert.public_key()
        _ = (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string())
    except _UNREADABLE as exc:
        return str(exc) or type(exc).__name__
    return None


def usable(items: Iterable[Loaded]) -> list[x509.Certificate]:
    return [item for item in items if isinstance(item, x509.Certificate)]


def unparseable(items: Iterable[Loaded]) -> list[Unparseable]:
    return [item for item in items if isinstance(item, Unparseable)]


def describe_content(data: bytes) -> str:
    """A few words on what a blob that holds no certificate looks like, never what it says.

    The blob may be a password or a key given by mistake: only its size, the
    labels of its PEM blocks and whether it is text are told.
    """
    if not data.strip():
        return "it is empty" if not data else f"it holds only white space ({len(data)} bytes)"
    labels = _pem_labels(data)
    if labels:
        kinds = " and ".join(label.lower() for label in labels)
        return f"it holds a PEM {kinds} ({len(data)} bytes), not a certificate"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"it holds {len(data)} bytes of binary data, not a certificate"
    if not all(c.isprintable() or c.isspace() for c in text):
        return f"it holds {len(data)} bytes of binary data, not a certificate"
    return f"it holds {len(data)} bytes of text, not a certificate"


# PEM labels as RFC 7468 writes them ("PRIVATE KEY"): anything else in a blob is not told.
_PEM_LABEL_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")


def _pem_labels(data: bytes) -> list[str]:
    labels: dict[str, None] = {}
    for block in data.split(b"-----BEGIN ")[1:]:
        label, end, _ = block.partition(b"-----")
        if end and 0 < len(label) <= 40 and _PEM_LABEL_BYTES.issuperset(label):
            labels[label.decode("ascii")] = None
    return list(labels)


def key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def subject_alt_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names = [f"DNS:{name}" for name in san.get_values_for_type(x509.DNSName)]
    names += [f"IP:{ip}" for ip in san.get_values_for_type(x509.IPAddress)]
    names += [f"URI:{uri}" for uri in san.get_values_for_type(x509.UniformResourceIdentifier)]
    return tuple(names)


def basic_constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    return aki.key_identifier


def is_ca(cert: x509.Certificate) -> bool:
    constraints = basic_constraints(cert)
    return constraints is not None and constraints.ca


def can_sign_certificates(cert: x509.Certificate) -> bool:
    """True when nothing forbids ``cert`` to issue certificates (RFC 5280 4.2.1.3)."""
    usage = key_usage(cert)
    return usage is None or usage.key_cert_sign


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature."""
    return cert.subject == cert.issuer and signed_by(cert, cert)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer``'s key made ``cert``'s signature; names are not compared.

    A rotated CA keeps its name and changes its key, so the key is what counts.
    """
    key = issuer.public_key()
    try:
        algorithm = cert.signature_hash_algorithm
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, verifying_ecdsa(algorithm))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False  # UnsupportedAlgorithm: a signature algorithm cryptography does not know
    return True


class _VerifyingECDSA(ec.ECDSA):
    """``ec.ECDSA`` for verifying, made without importing cryptography's OpenSSL backend.

    ``ECDSA.__init__`` imports ``hazmat.backends.openssl.backend`` (6 to 8 ms,
    a third of what a JSON report of ``connect`` adds to its start) only to check
    that deterministic *signing* (RFC 6979) is supported; a verification never
    signs. This sets the two attributes that ``ECDSA``'s properties read:
    https://github.com/pyca/cryptography/blob/50.0.2/src/cryptography/hazmat/primitives/asymmetric/ec.py
    (class ECDSA). ``verifying_ecdsa`` checks they still are, and
    ``tests/test_signatures.py`` that the answers equal ``ec.ECDSA``'s.
    """

    def __init__(self, algorithm: hashes.HashAlgorithm) -> None:  # no super(): on purpose
        self._algorithm = algorithm
        self._deterministic_signing = False


def verifying_ecdsa(algorithm: hashes.HashAlgorithm) -> ec.ECDSA:
    """An ``ec.ECDSA`` for ``key.verify``; the stock one if cryptography changed its shape."""
    try:
        made = _VerifyingECDSA(algorithm)
        if made.algorithm is algorithm and made.deterministic_signing is False:
            return made
    except AttributeError:
        pass
    return ec.ECDSA(algorithm)


def name_of(name: x509.Name) -> str:
    return name.rfc4514_string() or "(empty name)"


def common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else None


def is_quickstart_ca(cert: x509.Certificate) -> bool:
    return common_name(cert.subject) == QUICKSTART_CA_CN


def days_left(cert: x509.Certificate, now: datetime) -> int:
    """Whole days until ``not_after``; negative once expired."""
    return days_until(cert.not_valid_after_utc, now)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(SHA256()).hex()


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string


def _constraints_text(cert: x509.Certificate) -> str | None:
    try:
        ext = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return None
    text = "CA:TRUE" if ext.value.ca else "CA:FALSE"
    if ext.value.path_length is not None:
        text += f", pathlen:{ext.value.path_length}"
    return text + (" (critical)" if ext.critical else "")


def _key_usage_names(cert: x509.Certificate) -> tuple[str, ...]:
    usage = key_usage(cert)
    if usage is None:
        return ()
    names = [name for attr, name in _KEY_USAGE_NAMES if getattr(usage, attr)]
    if usage.key_agreement:
        names += [name for attr, name in _AGREEMENT_ONLY_NAMES if getattr(usage, attr)]
    return tuple(names)


def _eku_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku)


def certificate_findings(
    cert: x509.Certificate, now: datetime, *, as_trust_anchor: bool = False
) -> tuple[Finding, ...]:
    """Expiry, and for a certificate meant as a trust anchor, its CA fitness."""
    return cert_findings.certificate_findings(
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        is_ca=is_ca(cert),
        can_sign=can_sign_certificates(cert),
        quickstart=is_quickstart_ca(cert),
        serial=serial_number(cert),
        now=now,
        as_trust_anchor=as_trust_anchor,
    )


def describe(cert: x509.Certificate, now: datetime, *, as_trust_anchor: bool = False) -> CertInfo:
    """The operator's view of one certificate at time ``now``."""
    ski = subject_key_id(cert)
    aki = authority_key_id(cert)
    return CertInfo(
        subject=name_of(cert.subject),
        issuer=name_of(cert.issuer),
        serial=format(serial_number(cert), "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        days_left=days_left(cert, now),
        sans=subject_alt_names(cert),
        is_ca=is_ca(cert),
        key=key_description(cert),
        sha256=fingerprint(cert),
        signature_algorithm=_signature_algorithm(cert),
        basic_constraints=_constraints_text(cert),
        key_usage=_key_usage_names(cert),
        extended_key_usage=_eku_names(cert),
        ski=ski.hex() if ski else None,
        aki=aki.hex() if aki else None,
        self_signed=is_self_signed(cert),
        findings=certificate_findings(cert, now, as_trust_anchor=as_trust_anchor),
    )


def describe_all(
    certs: Iterable[Loaded], now: datetime, *, as_trust_anchor: bool = False
) -> tuple[CertInfo, ...]:
    """Each certificate described; one cryptography cannot load at all has no entry."""
    described = []
    for cert in certs:
        if isinstance(cert, x509.Certificate):
            described.append(describe(cert, now, as_trust_anchor=as_trust_anchor))
        elif (partly := describe_unparseable(cert, now)) is not None:
            described.append(partly)
    return tuple(described)


def describe_unparseable(item: Unparseable, now: datetime) -> CertInfo | None:
    """What can be read of a certificate that loads but does not parse in full, or None.

    Its extensions are not read (they are what fails, mostly): the entry says
    so in a finding, with the reason; its fingerprint is that of its DER.
    """
    cert = item.certificate
    if cert is None:
        return None
    return CertInfo(
        subject=_subject_of(cert),
        issuer=_readable(lambda: name_of(cert.issuer)),
        serial=format(serial_number(cert), "x"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        days_left=days_left(cert, now),
        sans=(),
        is_ca=False,
        key=_readable(lambda: key_description(cert)),
        sha256=item.sha256,
        signature_algorithm=_signature_algorithm(cert),
        basic_constraints=None,
        key_usage=(),
        extended_key_usage=(),
        ski=None,
        aki=None,
        self_signed=False,
        findings=(
            Finding(
                FindingCode.UNPARSEABLE,
                f"cryptography cannot parse this certificate: {item.reason}; its extensions "
                "are not shown, and OpenSSL's verdict stands",
            ),
        ),
    )


def _readable(read: Callable[[], str]) -> str:
    try:
        return read()
    except _UNREADABLE:
        return "(cannot be parsed)"


def _subject_of(cert: x509.Certificate) -> str:
    return _readable(lambda: name_of(cert.subject))


def unparseable_finding(item: Unparseable, what: str, consequence: str) -> Finding:
    """A report's warning about ``item``: ``what`` names it, ``consequence`` says what follows."""
    name = f" ({_subject_of(item.certificate)})" if item.certificate is not None else ""
    fingerprint = f", SHA-256 {item.sha256}" if item.der else ""
    return Finding(
        FindingCode.UNPARSEABLE,
        f"cryptography cannot parse {what}{name}{fingerprint}: {item.reason}; {consequence}.",
    )


def to_pem(certs: Sequence[x509.Certificate]) -> bytes:
    # Not at the top: ``serialization`` imports its SSH and cipher modules (~3 ms),
    # which describing a certificate never needs.
    from cryptography.hazmat.primitives.serialization import Encoding

    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)
