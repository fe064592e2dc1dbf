"""Would cryptography's strict verifier accept a chain OpenSSL already verified? A pre-check.

Rule: ``strict_accepts`` returns True only when every rule of cryptography's
server-verification policy (``cryptography.x509.verification``, the Rust crate
``cryptography-x509-verification``; 50.0 installed here) is known to hold for the
chain; False means "not sure": the caller then runs cryptography itself. The
signatures are not checked here: the chain is OpenSSL's verified chain, so each
certificate was signed by the next. Pure, stdlib only.

Upstream rules encoded (src/rust/cryptography-x509-verification/src/policy/):
- mod.rs ``permits_basic``: v3; outer and TBS signature algorithms equal; serial
  positive, at most 20 octets; issuer non-empty; validity dates in UTCTime before 2050
  and GeneralizedTime from 2050; the validation time within [notBefore, notAfter];
- mod.rs ``valid_issuer``: the issuer's SPKI algorithm in WEBPKI_PERMITTED_SPKI_ALGORITHMS
  (RSA, P-256, P-384, P-521), the child's signature algorithm in
  WEBPKI_PERMITTED_SIGNATURE_ALGORITHMS, an RSA issuer's modulus of 2048 bits or more;
- mod.rs ``permits_ca``: basicConstraints pathLenConstraint against the depth;
- extension.rs ``new_default_webpki_ca``/``new_default_webpki_ee`` and the ``ca``/``ee``
  validators: criticality and presence of each extension, keyCertSign in CAs and not in
  the leaf, cA asserted in CAs and not in the leaf, EKU serverAuth (or anyEKU in a CA),
  the leaf's AKI and SAN present, SAN criticality against an empty subject, no unknown
  critical extension;
- mod.rs ``Subject::matches`` and types.rs ``DNSName``/``IPAddress``: the server name
  against the leaf's SANs.
Stricter than upstream, to stay sure: no wildcard matching (an exact SAN is needed),
every certificate's key (the leaf's too) in the permitted set, the path length counted
without the self-issued exemption, AKI and SKI equal where both exist, names compared as
bytes, no name constraints (``read_light`` refuses them), at most 6 certificates.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise

from mqtt_tls_probe.core.lightcert import (
    AUTHORITY_KEY_ID,
    BASIC_CONSTRAINTS,
    EXTENDED_KEY_USAGE,
    KEY_USAGE,
    SERVER_AUTH,
    SPKI_P256,
    SPKI_P384,
    SPKI_P521,
    SPKI_RSA,
    SUBJECT_ALT_NAME,
    SUBJECT_KEY_ID,
    LightCert,
)

# policy/mod.rs: WEBPKI_PERMITTED_SIGNATURE_ALGORITHMS (exact DER of each AlgorithmIdentifier).
_PERMITTED_SIGNATURES = frozenset(
    bytes.fromhex(h)
    for h in (
        "300a06082a8648ce3d040302",  # ecdsa-with-SHA256
        "300a06082a8648ce3d040303",  # ecdsa-with-SHA384
        "300a06082a8648ce3d040304",  # ecdsa-with-SHA512
        "300d06092a864886f70d01010b0500",  # sha256WithRSAEncryption
        "300d06092a864886f70d01010c0500",  # sha384WithRSAEncryption
        "300d06092a864886f70d01010d0500",  # sha512WithRSAEncryption
        "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886"
        "f70d010108300d06096086480165030402010500a203020120",  # PSS SHA-256
        "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a864886"
        "f70d010108300d06096086480165030402020500a203020130",  # PSS SHA-384
        "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a864886"
        "f70d010108300d06096086480165030402030500a203020140",  # PSS SHA-512
    )
)
# policy/mod.rs: WEBPKI_PERMITTED_SPKI_ALGORITHMS.
_PERMITTED_KEYS = frozenset({SPKI_RSA, SPKI_P256, SPKI_P384, SPKI_P521})
_MIN_RSA_BITS = 2048  # policy/mod.rs: WEBPKI_MINIMUM_RSA_MODULUS
_ANY_EKU = "2.5.29.37.0"
_MAX_CHAIN = 6  # below policy/mod.rs DEFAULT_MAX_CHAIN_DEPTH (8 intermediates)
# Validity is compared at whole seconds upstream; keep a margin instead of guessing rounding.
_MARGIN = timedelta(seconds=2)
_MAX_DNS_LENGTH = 253
_MAX_LABEL = 63


# The extensions these checks know; any other one (even non-critical) means "not sure".
_KNOWN_EXTENSIONS = frozenset(
    {
        AUTHORITY_KEY_ID,
        SUBJECT_KEY_ID,
        KEY_USAGE,
        SUBJECT_ALT_NAME,
        BASIC_CONSTRAINTS,
        EXTENDED_KEY_USAGE,
    }
)


def strict_accepts(
    chain: Sequence[LightCert], anchor: LightCert, server_name: str, now: datetime
) -> bool:
    """True when cryptography's server verifier surely accepts ``chain`` up to ``anchor``.

    ``chain`` is OpenSSL's verified chain, leaf first, without ``anchor`` (the trusted
    certificate it ended at). False means unsure, never "rejected".
    """
    if not chain or len(chain) + 1 > _MAX_CHAIN or now.tzinfo is None:
        return False
    if any(cert.der == anchor.der for cert in chain):
        return False
    path = [*chain, anchor]
    for child, issuer in pairwise(path):
        if child.issuer.der != issuer.subject.der:
            return False
        if child.aki is not None and issuer.ski is not None and child.aki != issuer.ski:
            return False
        if child.signature_algorithm_der not in _PERMITTED_SIGNATURES:
            return False
    for cert in path:
        if not _basic(cert, now) or not _key_permitted(cert):
            return False
    leaf = chain[0]
    if not _ee_extensions(leaf) or not _name_matches(leaf, server_name):
        return False
    # Position i (1-based above the leaf) has i - 1 intermediates below it.
    return all(_ca_extensions(cert, below) for below, cert in enumerate(path[1:]))


def _basic(cert: LightCert, now: datetime) -> bool:
    """policy/mod.rs ``permits_basic``."""
    return (
        cert.version == 2
        and 0 < cert.serial < 1 << 159  # 20 octets, positive
        and bool(cert.issuer.rdns)
        and cert.times_as_rfc5280
        and cert.not_before + _MARGIN <= now <= cert.not_after - _MARGIN
    )


def _key_permitted(cert: LightCert) -> bool:
    """policy/mod.rs ``valid_issuer``: SPKI algorithm and RSA size (applied to all here)."""
    if cert.spki_algorithm_der not in _PERMITTED_KEYS:
        return False
    if cert.spki_algorithm_der == SPKI_RSA:
        return int(cert.key_description.split()[1]) >= _MIN_RSA_BITS
    return True


def _critical(cert: LightCert) -> dict[str, bool]:
    return dict(cert.extensions)


def _ee_extensions(cert: LightCert) -> bool:
    """extension.rs ``new_default_webpki_ee`` and the ``ee`` validators."""
    present = _critical(cert)
    if AUTHORITY_KEY_ID not in present or present[AUTHORITY_KEY_ID]:
        return False  # AKI: present, non-critical
    if SUBJECT_ALT_NAME not in present:
        return False
    if present[SUBJECT_ALT_NAME] != (not cert.subject.rdns):
        return False  # SAN critical exactly when the subject is empty
    if cert.key_usage is not None and "keyCertSign" in cert.key_usage:
        return False
    if cert.basic_constraints is not None and cert.basic_constraints[0]:
        return False
    if cert.eku_oids is not None and (
        present[EXTENDED_KEY_USAGE] or SERVER_AUTH not in cert.eku_oids
    ):
        return False
    return set(present) <= _KNOWN_EXTENSIONS


def _ca_extensions(cert: LightCert, intermediates_below: int) -> bool:
    """extension.rs ``new_default_webpki_ca``, the ``ca`` validators, mod.rs ``permits_ca``."""
    present = _critical(cert)
    constraints = cert.basic_constraints
    if constraints is None or not constraints[0] or not constraints[2]:
        return False  # basicConstraints: present, critical, cA
    if constraints[1] is not None and constraints[1] < intermediates_below:
        return False
    if cert.key_usage is None or "keyCertSign" not in cert.key_usage:
        return False
    if present.get(AUTHORITY_KEY_ID) or present.get(SUBJECT_KEY_ID):
        return False  # non-critical when present (read_light keeps only keyIdentifier AKIs)
    if cert.eku_oids is not None and (
        present[EXTENDED_KEY_USAGE]
        or (SERVER_AUTH not in cert.eku_oids and _ANY_EKU not in cert.eku_oids)
    ):
        return False
    return set(present) <= _KNOWN_EXTENSIONS


def _name_matches(leaf: LightCert, server_name: str) -> bool:
    """An exact SAN for ``server_name``, as cryptography would build its Subject from it."""
    ip = _ip_bytes(server_name)
    if ip is not None:
        return ip in leaf.ip_addresses
    if not _valid_dns_name(server_name):
        return False  # cryptography's DNSName would refuse it: not sure what follows
    wanted = server_name.lower()
    return any(_valid_dns_name(name) and name.lower() == wanted for name in leaf.dns_names)


def _ip_bytes(text: str) -> bytes | None:
    if not text or "%" in text or not (text[0].isdigit() or ":" in text):
        return None
    import ipaddress  # lazily: only for a name that looks like an address

    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return None


def _valid_dns_name(name: str) -> bool:
    """types.rs ``DNSName::new``: LDH labels of 1-63 characters, no edge hyphens."""
    if not name or len(name) > _MAX_DNS_LENGTH or not name.isascii():
        return False
    for label in name.split("."):
        if not label or len(label) > _MAX_LABEL or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c.isalnum() or c == "-" for c in label):
            return False
    return True
