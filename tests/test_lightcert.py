"""core.lightcert and core.strict_profile against cryptography, on real certificates.

The rule under test: whenever ``read_light`` returns facts, each equals what
``core.certinfo`` computes with cryptography; whenever ``strict_accepts`` says True,
cryptography's verifier accepts. Certificates are made with the project's dev PKI
and cryptography's CertificateBuilder; odd ones with tests/odd_certs.py.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mqtt_tls_probe.core import certinfo, der
from mqtt_tls_probe.core.lightcert import (
    LightCert,
    can_sign_certificates,
    days_left,
    escape_dn_value,
    is_ca,
    is_quickstart_ca,
    pem_blocks,
    read_light,
)
from mqtt_tls_probe.core.strict_profile import strict_accepts
from mqtt_tls_probe.core.verify import strict_rejection
from mqtt_tls_probe.dev import pki
from mqtt_tls_probe.model import Unparseable
from tests import odd_certs

NOW = datetime.now(UTC)
PrivateKey = Any  # the test keys: EC, RSA or Ed25519


# --- keys and builders ---------------------------------------------------------------


@functools.cache
def key_of(kind: str) -> PrivateKey:
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curves = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}
    return ec.generate_private_key(curves[kind])


HASHES: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {
    "sha512": hashes.SHA512(),
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
}


def sign(builder: x509.CertificateBuilder, key: PrivateKey, digest: str = "sha256") -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else HASHES[digest]
    return builder.sign(key, algorithm).public_bytes(Encoding.DER)


def builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    *,
    serial: int = 0x1234,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before or NOW - timedelta(days=1))
        .not_valid_after(not_after or NOW + timedelta(days=30))
    )


def cn(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def key_usage(**set_bits: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: set_bits.get(name, False) for name in names})


def der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + odd_certs._length(len(content)) + content


def version1(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A v1 certificate: a v3 one without extensions, its version field removed, signed again."""
    cert = builder(cn("v1"), cn("v1"), key.public_key()).sign(key, hashes.SHA256())
    tbs = cert.tbs_certificate_bytes
    body = der.read_single(tbs, der.SEQUENCE)
    first = der.children(tbs, body)[0]
    assert first.tag == 0xA0
    new_tbs = _tlv(0x30, tbs[first.end : body.end])
    algorithm = bytes.fromhex("300a06082a8648ce3d040302")
    signature = key.sign(new_tbs, ec.ECDSA(hashes.SHA256()))
    return _tlv(0x30, new_tbs + algorithm + _tlv(0x03, b"\x00" + signature))


# --- the differential check ------------------------------------------------------------


def matches_cryptography(data: bytes) -> LightCert | None:
    """``read_light(data)``; when not None, every field checked against certinfo."""
    light = read_light(data)
    if light is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the light path must not take what cryptography warns of
        cert = x509.load_der_x509_certificate(data)
        assert certinfo.unreadable_part(cert) is None
        assert light.serial == cert.serial_number
    assert light.der == data
    assert light.sha256 == certinfo.fingerprint(cert)
    assert cert.version is x509.Version.v3
    assert light.signature_oid == cert.signature_algorithm_oid.dotted_string
    assert light.signature_algorithm == certinfo._signature_algorithm(cert)
    assert light.subject_text == certinfo.name_of(cert.subject)
    assert light.issuer_text == certinfo.name_of(cert.issuer)
    assert light.subject.der == cert.subject.public_bytes()
    assert light.issuer.der == cert.issuer.public_bytes()
    assert light.common_name == certinfo.common_name(cert.subject)
    assert light.not_before == cert.not_valid_before_utc
    assert light.not_after == cert.not_valid_after_utc
    assert light.key_description == certinfo.key_description(cert)
    assert light.sans == certinfo.subject_alt_names(cert)
    assert (light.key_usage or ()) == certinfo._key_usage_names(cert)
    assert (light.extended_key_usage or ()) == certinfo._eku_names(cert)
    assert light.ski == certinfo.subject_key_id(cert)
    assert light.aki == certinfo.authority_key_id(cert)
    constraints = certinfo.basic_constraints(cert)
    if constraints is None:
        assert light.basic_constraints is None
    else:
        critical = cert.extensions.get_extension_for_class(x509.BasicConstraints).critical
        assert light.basic_constraints == (constraints.ca, constraints.path_length, critical)
    assert light.extensions == tuple((e.oid.dotted_string, e.critical) for e in cert.extensions)
    assert is_ca(light) == certinfo.is_ca(cert)
    assert can_sign_certificates(light) == certinfo.can_sign_certificates(cert)
    assert is_quickstart_ca(light) == certinfo.is_quickstart_ca(cert)
    for moment in (NOW, NOW + timedelta(days=400), NOW - timedelta(days=3, seconds=7)):
        assert days_left(light, moment) == certinfo.days_left(cert, moment)
    return light


@pytest.fixture(scope="module")
def dev_pki() -> dict[str, pki.CertAndKey]:
    root = pki.create_root_ca()
    inter = pki.create_intermediate_ca(root, "Probe Intermediate CA")
    return {
        "root": root,
        "intermediate": inter,
        "server": pki.issue_server_certificate(
            root, ["localhost", "127.0.0.1", "::1", "aio-broker"]
        ),
        "server_via_intermediate": pki.issue_server_certificate(inter),
        "client": pki.issue_client_certificate(root),
        "self_signed_leaf": pki.issue_server_certificate(None),
        "no_key_usage_root": pki.create_root_ca("plain root", with_key_usage=False),
    }


def test_dev_pki_takes_the_light_path(dev_pki: dict[str, pki.CertAndKey]) -> None:
    for name, pair in dev_pki.items():
        assert matches_cryptography(der_of(pair.certificate)) is not None, name
    root = read_light(der_of(dev_pki["root"].certificate))
    assert root is not None
    assert is_quickstart_ca(root)


def test_odd_certificates_are_refused(dev_pki: dict[str, pki.CertAndKey]) -> None:
    root = dev_pki["root"]
    for make in (
        odd_certs.duplicate_extension,
        odd_certs.malformed_ip_san,
        odd_certs.ber_boolean,
        odd_certs.negative_serial,
    ):
        assert read_light(make(root)) is None, make.__name__
    big = odd_certs.oversized_leaf(root, ["localhost"], size=1 << 16)
    assert read_light(der_of(big.certificate)) is None  # an extension it does not know


def test_v1_and_no_extensions_are_refused() -> None:
    key = key_of("p256")
    assert read_light(version1(key)) is None
    assert (
        matches_cryptography(sign(builder(cn("bare"), cn("bare"), key.public_key()), key)) is None
    )


@pytest.mark.parametrize(
    "kind", ["rsa1024", "rsa2048", "rsa3072", "p256", "p384", "p521", "ed25519"]
)
@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_keys_and_signatures(kind: str, digest: str) -> None:
    key = key_of(kind)
    if kind == "ed25519" and digest != "sha256":
        pytest.skip("Ed25519 signs without a separate hash")
    made = builder(cn(f"{kind}-{digest}"), cn("issuer"), key.public_key()).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    light = matches_cryptography(sign(made, key, digest))
    assert light is not None
    assert light.key_description.startswith(("RSA", "EC", "Ed25519"))


def test_extension_variants() -> None:
    key = key_of("p256")
    base = builder(cn("variants"), cn("issuer"), key.public_key())
    variants = [
        base.add_extension(key_usage(key_agreement=True, encipher_only=True), critical=False),
        base.add_extension(key_usage(key_agreement=True, decipher_only=True), critical=True),
        base.add_extension(key_usage(crl_sign=True, key_cert_sign=True), critical=True),
        base.add_extension(x509.BasicConstraints(ca=True, path_length=3), critical=False),
        base.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING, ObjectIdentifier("1.2.3")]),
            critical=True,
        ),
        base.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.UniformResourceIdentifier("spiffe://x/y"),
                    x509.RFC822Name("a@b.c"),
                    x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                    x509.DNSName("*.example.com"),
                ]
            ),
            critical=True,
        ),
        base.add_extension(x509.SubjectKeyIdentifier(b"\x01\x02"), critical=False),
        base.add_extension(x509.AuthorityKeyIdentifier(b"\x09" * 20, None, None), critical=False),
    ]
    for made in variants:
        assert matches_cryptography(sign(made, key)) is not None
    refused = [
        base.add_extension(x509.NameConstraints([x509.DNSName("example.com")], None), True),
        base.add_extension(
            x509.AuthorityKeyIdentifier(b"\x09", [x509.DNSName("x")], 5), critical=False
        ),
        base.add_extension(
            x509.SubjectAlternativeName([x509.DirectoryName(cn("d"))]), critical=False
        ),
    ]
    for made in refused:
        assert read_light(sign(made, key)) is None


def test_empty_subject_and_special_names() -> None:
    key = key_of("p256")
    names = [
        x509.Name([]),
        x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, " a,b+c "),
                        x509.NameAttribute(NameOID.COMMON_NAME, '#x"y\\z<>;='),
                    ]
                ),
                x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")]),
            ]
        ),
        x509.Name([x509.NameAttribute(ObjectIdentifier("1.2.3.4"), " ")]),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmp ü", _ASN1Type.BMPString)]),
        x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c")]),
    ]
    for name in names:
        made = builder(name, cn("issuer"), key.public_key()).add_extension(
            x509.SubjectAlternativeName([x509.DNSName("x.example")]), critical=not name
        )
        assert matches_cryptography(sign(made, key)) is not None, name


def test_escaping_matches_cryptography() -> None:
    from cryptography.x509.name import _escape_dn_value

    for value in ["", " ", "  ", "#", " #", "# ", "a\0b", "\\", 'x"y', "a+b,c;d<e>f", "é "]:
        assert escape_dn_value(value) == _escape_dn_value(value), value


# --- Hypothesis-generated certificates ------------------------------------------------

_SPECIALS = ',+"\\<>;#= \0'
_VALUES = st.text(
    alphabet=st.one_of(st.sampled_from(_SPECIALS), st.characters(codec="utf-8")), max_size=12
)
_OIDS = [
    NameOID.COMMON_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    NameOID.SERIAL_NUMBER,
    ObjectIdentifier("1.2.3.4.5"),
]


@st.composite
def attributes(draw: st.DrawFn) -> x509.NameAttribute[str]:
    if draw(st.integers(0, 9)) == 0:
        return x509.NameAttribute(NameOID.COUNTRY_NAME, draw(st.sampled_from(["DE", "US", "X,"])))
    oid = draw(st.sampled_from(_OIDS))
    value = draw(_VALUES)
    if oid == NameOID.COMMON_NAME:
        assume(1 <= len(value.encode()) <= 64)
    kind = draw(st.sampled_from([None, _ASN1Type.UTF8String, _ASN1Type.BMPString]))
    return x509.NameAttribute(oid, value, kind)


@st.composite
def names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(0, 4))):
        members = draw(st.lists(attributes(), min_size=1, max_size=3, unique=True))
        rdns.append(x509.RelativeDistinguishedName(members))
    return x509.Name(rdns)


_GENERAL_NAMES = st.one_of(
    st.builds(
        x509.DNSName, st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)
    ),
    st.builds(lambda a: x509.IPAddress(ipaddress.IPv4Address(a)), st.integers(0, 2**32 - 1)),
    st.builds(lambda a: x509.IPAddress(ipaddress.IPv6Address(a)), st.integers(0, 2**128 - 1)),
    st.builds(x509.UniformResourceIdentifier, st.sampled_from(["https://a/b", "urn:x"])),
    st.builds(x509.RFC822Name, st.sampled_from(["a@b.c", "x@y"])),
)
_TIMES = st.datetimes(
    min_value=datetime(1951, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def certificates(draw: st.DrawFn) -> bytes:
    key = key_of(draw(st.sampled_from(["p256", "p384", "ed25519", "rsa2048"])))
    start = draw(_TIMES)
    made = builder(
        draw(names()),
        draw(names()),
        key.public_key(),
        serial=draw(st.integers(1, 2**159 - 1)),
        not_before=start,
        not_after=start + timedelta(seconds=draw(st.integers(0, 10**9))),
    )
    if draw(st.booleans()):
        ca = draw(st.booleans())
        path = draw(st.one_of(st.none(), st.integers(0, 300))) if ca else None
        made = made.add_extension(x509.BasicConstraints(ca, path), critical=draw(st.booleans()))
    if draw(st.booleans()):
        bits = draw(st.lists(st.booleans(), min_size=7, max_size=7))
        extra = draw(st.lists(st.booleans(), min_size=2, max_size=2)) if bits[4] else [False] * 2
        usage = x509.KeyUsage(*bits, *extra)
        made = made.add_extension(usage, critical=draw(st.booleans()))
    if draw(st.booleans()):
        oids = draw(
            st.lists(
                st.sampled_from(
                    [
                        ExtendedKeyUsageOID.SERVER_AUTH,
                        ExtendedKeyUsageOID.CLIENT_AUTH,
                        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                        ObjectIdentifier("1.3.6.1.4.1.99.1"),
                    ]
                ),
                min_size=1,
                max_size=3,
            )
        )
        made = made.add_extension(x509.ExtendedKeyUsage(oids), critical=draw(st.booleans()))
    if draw(st.booleans()):
        sans = draw(st.lists(_GENERAL_NAMES, min_size=1, max_size=5))
        made = made.add_extension(x509.SubjectAlternativeName(sans), critical=draw(st.booleans()))
    if draw(st.booleans()):
        made = made.add_extension(
            x509.SubjectKeyIdentifier(draw(st.binary(min_size=1, max_size=24))), critical=False
        )
    if draw(st.booleans()):
        made = made.add_extension(
            x509.AuthorityKeyIdentifier(draw(st.binary(min_size=1, max_size=24)), None, None),
            critical=False,
        )
    try:
        return sign(made, key)
    except ValueError:  # e.g. no extensions at all is still fine; a name cryptography refuses
        assume(False)
        raise


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(certificates())
def test_generated_certificates_match_cryptography(data: bytes) -> None:
    matches_cryptography(data)


# --- PEM -------------------------------------------------------------------------------


def reference_blocks(data: bytes) -> list[bytes]:
    return [
        item.der if isinstance(item, Unparseable) else der_of(item)
        for item in certinfo.read_certificates(data)
    ]


def test_pem_blocks(dev_pki: dict[str, pki.CertAndKey]) -> None:
    one, two = der_of(dev_pki["server"].certificate), der_of(dev_pki["root"].certificate)
    pem = odd_certs.pem(one) + odd_certs.pem(two)
    good = [
        pem,
        pem.replace(b"\n", b"\r\n"),
        pem.rstrip(b"\n"),
        b"\n\n" + odd_certs.pem(one) + b"\n  \n" + odd_certs.pem(two),
        b"".join([odd_certs.pem(one)] * 2000),  # a huge bundle
    ]
    for data in good:
        blocks = pem_blocks(data)
        assert blocks is not None
        assert blocks == reference_blocks(data)
        assert blocks == [der_of(c) for c in certinfo.parse_certificates(data)]
    body = base64.b64encode(one)
    hostile = [
        b"",
        b"no pem here",
        odd_certs.pem(one) + b"garbage\n" + odd_certs.pem(two),
        b"-----BEGIN CERTIFICATE-----\n" + body[:-3] + b"\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n"
        + body[:8]
        + b"="
        + body[9:]
        + b"\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n" + body + b"\n",  # no END
        b"-----BEGIN CERTIFICATE-----\n"
        + body[:10]
        + b" "
        + body[10:]
        + b"\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" + odd_certs.pem(one),
        b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----" + body + b"\n-----END CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\nAA==AA==\n-----END CERTIFICATE-----\n",
    ]
    for data in hostile:
        assert pem_blocks(data) is None, data[:80]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 2000))
def test_pem_blocks_never_disagrees(noise: bytes, cut: int) -> None:
    body = odd_certs.pem(bytes(range(256)) * 3)
    data = body[:cut] + noise + body[cut:]
    blocks = pem_blocks(data)
    if blocks is not None:
        assert blocks == reference_blocks(data)


# --- strict_accepts ---------------------------------------------------------------------


def light(pair: pki.CertAndKey) -> LightCert:
    found = read_light(der_of(pair.certificate))
    assert found is not None
    return found


def test_strict_accepts_the_dev_chains(dev_pki: dict[str, pki.CertAndKey]) -> None:
    root, server = dev_pki["root"], dev_pki["server"]
    # The module's PKI starts when it was made, not when the module was collected.
    now = datetime.now(UTC) + timedelta(minutes=1)
    for name in ("localhost", "LOCALHOST", "127.0.0.1", "::1", "aio-broker"):
        assert strict_rejection([server.certificate], [root.certificate], name, now) is None
        assert strict_accepts([light(server)], light(root), name, now), name
    for name in ("other", "127.0.0.2", "local_host", "*.x", "localhost."):
        assert not strict_accepts([light(server)], light(root), name, now), name
    chain = [light(dev_pki["server_via_intermediate"]), light(dev_pki["intermediate"])]
    assert strict_accepts(chain, light(root), "localhost", now)
    assert not strict_accepts(chain[:1], light(root), "localhost", now)  # a gap in the chain
    assert not strict_accepts([light(server)], light(root), "localhost", now + timedelta(days=90))
    # A root without keyUsage: cryptography requires it, so never "sure".
    plain = dev_pki["no_key_usage_root"]
    leaf = pki.issue_server_certificate(plain)
    assert strict_rejection([leaf.certificate], [plain.certificate], "localhost", now) is not None
    assert not strict_accepts([light(leaf)], light(plain), "localhost", now)


# True most of the time (Hypothesis draws small integers far more often than others).
MOSTLY = st.sampled_from([True] * 7 + [False])


def _chain_builder(
    draw: st.DrawFn,
) -> tuple[list[x509.Certificate], x509.Certificate, str, datetime]:
    keys = ["p256", "p256", "p256", "p384", "rsa2048", "rsa1024", "ed25519"]
    root_key = key_of(draw(st.sampled_from(keys)))
    root_name = cn("Root " + draw(st.sampled_from(["A", "B"])))

    def ca_extensions(made: x509.CertificateBuilder, child_key: Any, path: int | None) -> Any:
        if draw(MOSTLY):
            ca = draw(MOSTLY)
            made = made.add_extension(
                x509.BasicConstraints(ca=ca, path_length=path if ca else None),
                critical=draw(MOSTLY),
            )
        if draw(MOSTLY):
            made = made.add_extension(
                key_usage(key_cert_sign=draw(MOSTLY), crl_sign=True),
                critical=draw(st.booleans()),
            )
        if draw(st.booleans()):
            made = made.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(child_key.public_key()),
                critical=not draw(MOSTLY),
            )
        if not draw(MOSTLY):
            eku = draw(
                st.sampled_from([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
            )
            made = made.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        return made

    def window() -> tuple[datetime, datetime]:
        start = NOW - timedelta(days=draw(st.sampled_from([1] * 8 + [10, -2])))
        end = NOW + timedelta(days=draw(st.sampled_from([30] * 8 + [40000, 5, -1])))
        return start, max(end, start + timedelta(days=1))

    digest = draw(st.sampled_from(["sha256", "sha256", "sha384", "sha512"]))
    path_len = draw(st.sampled_from([None, None, 0, 1]))
    start, end = window()
    root = sign(
        ca_extensions(
            builder(root_name, root_name, root_key.public_key(), not_before=start, not_after=end),
            root_key,
            path_len,
        ),
        root_key,
        digest,
    )
    issuer_name, issuer_key = root_name, root_key
    intermediates: list[x509.Certificate] = []
    for depth in range(draw(st.integers(0, 2))):
        key = key_of(draw(st.sampled_from(keys)))
        name = cn(f"Intermediate {depth}")
        start, end = window()
        made = ca_extensions(
            builder(name, issuer_name, key.public_key(), not_before=start, not_after=end),
            key,
            draw(st.sampled_from([None, 0, 1])),
        )
        if draw(MOSTLY):
            made = made.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
        intermediates.insert(0, x509.load_der_x509_certificate(sign(made, issuer_key, digest)))
        issuer_name, issuer_key = name, key
    leaf_key = key_of(draw(st.sampled_from(keys)))
    start, end = window()
    subject = draw(st.sampled_from([cn("leaf"), cn("leaf"), cn("leaf"), x509.Name([])]))
    made = builder(subject, issuer_name, leaf_key.public_key(), not_before=start, not_after=end)
    if draw(MOSTLY):
        made = made.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("broker.example"), x509.IPAddress(ipaddress.ip_address("10.0.0.1"))]
            ),
            critical=(not subject) == draw(MOSTLY),
        )
    if draw(MOSTLY):
        made = made.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=not draw(MOSTLY),
        )
    if draw(st.booleans()):
        made = made.add_extension(
            x509.BasicConstraints(ca=not draw(MOSTLY), path_length=None),
            critical=draw(st.booleans()),
        )
    if draw(st.booleans()):
        made = made.add_extension(
            key_usage(digital_signature=True, key_cert_sign=not draw(MOSTLY)),
            critical=draw(st.booleans()),
        )
    if draw(st.booleans()):
        eku = draw(
            st.sampled_from(
                [
                    ExtendedKeyUsageOID.SERVER_AUTH,
                    ExtendedKeyUsageOID.CLIENT_AUTH,
                    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                ]
            )
        )
        made = made.add_extension(x509.ExtendedKeyUsage([eku]), critical=not draw(MOSTLY))
    leaf = x509.load_der_x509_certificate(sign(made, issuer_key, digest))
    server_name = draw(
        st.sampled_from(["broker.example", "BROKER.example", "10.0.0.1", "broker.example", "other"])
    )
    moment = NOW + timedelta(seconds=draw(st.sampled_from([0] * 9 + [86400 * 35])))
    return [leaf, *intermediates], x509.load_der_x509_certificate(root), server_name, moment


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[x509.Certificate], x509.Certificate, str, datetime]:
    return _chain_builder(draw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_strict_accepts_only_what_cryptography_accepts(
    case: tuple[list[x509.Certificate], x509.Certificate, str, datetime],
) -> None:
    chain, anchor, server_name, moment = case
    lights = [read_light(der_of(c)) for c in chain]
    anchor_light = read_light(der_of(anchor))
    if anchor_light is None or any(item is None for item in lights):
        return
    said = strict_accepts([c for c in lights if c is not None], anchor_light, server_name, moment)
    if said:
        assert strict_rejection(chain, [anchor], server_name, moment) is None


# --- hostile input ------------------------------------------------------------------------


def test_truncations_never_raise(dev_pki: dict[str, pki.CertAndKey]) -> None:
    data = der_of(dev_pki["server"].certificate)
    for size in range(len(data)):
        assert read_light(data[:size]) is None
    assert read_light(data + b"\x00") is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert read_light(data) is None
    wrapped = read_light(b"\x30\x82" + len(data).to_bytes(2, "big") + data)
    assert wrapped is None or isinstance(wrapped, LightCert)  # it never raises


def test_hostile_lengths_are_fast(dev_pki: dict[str, pki.CertAndKey]) -> None:
    nested = b"\x30\x83\x10\x00\x00" * 200_000  # 1 MB of headers, each claiming 1 MiB
    indefinite = b"\x30\x80" * 500_000
    huge_length = b"\x30\x84\xff\xff\xff\xff" + b"\x00" * (1 << 20)
    many = b"\x30\x83\x10\x00\x00" + b"\x30\x00" * ((1 << 20) // 2)
    root = dev_pki["root"]
    sans = x509.SubjectAlternativeName([x509.DNSName(f"n{i}.example") for i in range(40_000)])
    big = sign(
        builder(cn("big"), cn("issuer"), root.private_key.public_key()).add_extension(sans, False),
        root.private_key,
    )
    assert len(big) > 500_000
    for data in (nested, indefinite, huge_length, many):
        started = time.perf_counter()
        assert read_light(data) is None
        assert time.perf_counter() - started < 1.0
    started = time.perf_counter()
    assert matches_cryptography(big) is not None
    assert time.perf_counter() - started < 5.0


def test_import_does_not_load_cryptography() -> None:
    code = (
        "import sys, mqtt_tls_probe.core.lightcert, mqtt_tls_probe.core.strict_profile; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("tag", "body"),
    [
        (0x13, b"Leaf*QQ"),
        (0x13, b"a_b"),
        (0x13, b"x@y"),
        (0x13, b"caf\xc3\xa9"),
        (0x16, b"\xc3\xa9"),
    ],
)
def test_strings_cryptography_cannot_load_are_refused(tag: int, body: bytes) -> None:
    data = _tlv(tag, body)
    with pytest.raises(der.DerError):
        der.string(data, der.read(data))


def test_a_wildcard_common_name_in_a_printable_string_takes_the_cryptography_path() -> None:
    root = pki.create_root_ca("RootQQQ")
    leaf = pki.issue_server_certificate(root, ["localhost"], common_name="LeafQQQ")
    edit = odd_certs._replace_once(b"\x0c\x07LeafQQQ", b"\x13\x07Leaf*QQ")
    edited = odd_certs.resigned(leaf.certificate, root, edit)
    assert read_light(edited) is None
    assert isinstance(certinfo.load_der(edited), Unparseable)  # cryptography refuses it too


@pytest.mark.parametrize("size", [64, 200_000, 900_000])
def test_oids_longer_than_cryptography_reads_are_refused_at_once(size: int) -> None:
    data = _tlv(0x06, b"\x2b" + b"\x81" * (size - 2) + b"\x01")
    started = time.perf_counter()
    with pytest.raises(der.DerError):
        der.oid(data, der.read(data))
    assert time.perf_counter() - started < 0.5  # no arithmetic on a huge arc


def test_the_longest_oid_cryptography_reads_is_read() -> None:
    data = _tlv(0x06, b"\x2b" + b"\x01" * 62)
    assert der.oid(data, der.read(data)) == "1.3" + ".1" * 62


@pytest.mark.parametrize(("path_length", "read"), [((1 << 64) - 1, True), (1 << 64, False)])
def test_a_path_length_beyond_64_bits_is_refused(path_length: int, read: bool) -> None:
    from mqtt_tls_probe.core.lightcert import _basic_constraints

    encoded = path_length.to_bytes((path_length.bit_length() + 8) // 8, "big")
    value = _tlv(0x30, b"\x01\x01\xff" + _tlv(0x02, encoded))
    if read:
        assert _basic_constraints(value) == (True, path_length)
    else:
        with pytest.raises(der.DerError):
            _basic_constraints(value)


def test_the_light_rules_were_checked_against_this_cryptography() -> None:
    """lightcert and strict_profile mirror cryptography 50's parsing and policy.

    A new major version may read certificates or apply its strict policy
    differently: run this file's differential tests against it, read the
    changes to its x509 parsing and src/rust/cryptography-x509-verification,
    and update this pin (and pyproject.toml's range) with whatever the light
    reader needs.
    """
    import cryptography

    assert cryptography.__version__.split(".")[0] == "50"
