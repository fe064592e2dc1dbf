"""The ``verify`` stage: why OpenSSL rejected a chain, and what else is worth saying.

OpenSSL's verdict (see ``adapters/tls.py``) decides pass or fail. This module explains a
rejection from the certificates themselves, and on success reports findings:
expiry soon, the quickstart CA, and what a strict RFC 5280 verifier
(cryptography's, stricter than OpenSSL) would reject. It never fails a chain
that OpenSSL accepted.

Rule: the order of the checks decides the kind of a rejection
(``tests/test_verify.py::test_precedence`` pins it):

1. a certificate the server sent is outside its validity: ``cert_not_yet_valid``,
   ``cert_expired``;
2. the leaf is self-signed and not trusted: ``self_signed_leaf``;
3. the chain reaches a trusted certificate:
   a. that CA has expired: ``ca_expired``;
   b. a CA on the path is not a CA, or may not sign certificates: ``ca_invalid``;
   c. the trusted CA is not a root and its issuer is missing: ``unknown_ca``;
   d. the name checked is not in the leaf: ``hostname_mismatch``;
4. the chain does not reach a trusted certificate:
   a. a trusted CA has the issuer's name but another key: ``ca_rotated``;
   b. the server sent only its leaf: ``incomplete_chain``;
   c. otherwise: ``unknown_ca``;
5. nothing above applies: OpenSSL's verify code decides.

Before all of these: OpenSSL's verify codes 66 and 67 (``X509_V_ERR_EE_KEY_TOO_SMALL``,
``X509_V_ERR_CA_KEY_TOO_SMALL``) say the chain is otherwise acceptable but a key is
below the client's security level: ``unsupported_server_key``, reported in this stage.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from cryptography import x509

from mqtt_tls_probe import aio
from mqtt_tls_probe.core import cert_findings
from mqtt_tls_probe.core.certinfo import (
    authority_key_id,
    can_sign_certificates,
    common_name,
    is_ca,
    is_quickstart_ca,
    is_self_signed,
    key_description,
    name_of,
    quiet,
    signed_by,
    subject_alt_names,
    subject_key_id,
)
from mqtt_tls_probe.core.classify import verify_code_kind
from mqtt_tls_probe.core.moments import iso
from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, Stage
from mqtt_tls_probe.model import Finding, FindingCode

_MAX_PATH = 8


class ChainPath(NamedTuple):
    """The chain as built from what the server sent toward the trust anchors."""

    certs: tuple[x509.Certificate, ...]  # leaf first, then the sent issuers used
    anchor: x509.Certificate | None  # the trusted certificate reached, if any

    @property
    def top(self) -> x509.Certificate:
        return self.certs[-1]


def build_path(chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]) -> ChainPath:
    """Follow issuers from the leaf, preferring trusted certificates over sent ones."""
    leaf, sent = chain[0], list(chain[1:])
    certs = [leaf]
    current = leaf
    for _ in range(_MAX_PATH):
        if current in anchors:
            return ChainPath(tuple(certs), current)
        anchor = _issuer_among(current, anchors)
        if anchor is not None:
            return ChainPath(tuple(certs), anchor)
        issuer = _issuer_among(current, [c for c in sent if c not in certs])
        if issuer is None or is_self_signed(current):
            break
        certs.append(issuer)
        current = issuer
    return ChainPath(tuple(certs), None)


def _issuer_among(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject == cert.issuer and candidate != cert and signed_by(cert, candidate):
            return candidate
    return None


def explain_rejection(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    server_name: str,
    now: datetime,
    *,
    verify_code: int | None = None,
    verify_message: str | None = None,
) -> ErrorInfo:
    """Why a chain is not trusted: an ``ErrorInfo`` of the verify stage.

    ``chain`` is what the server sent (it may be empty when it could not be
    read); ``verify_code``/``verify_message`` are OpenSSL's, used last.
    """
    if verify_code in KEY_TOO_SMALL_CODES:
        return _key_too_small(verify_code, verify_message, chain)
    found = find_problem(chain, anchors, server_name, now)
    if found is not None:
        return found
    return _from_openssl(verify_code, verify_message, chain, server_name)


# OpenSSL checks key sizes against the security level while verifying (x509_vfy.c,
# check_key_level): the end-entity's key (66) and a CA's key (67).
KEY_TOO_SMALL_CODES = {66: 0, 67: 1}


def _key_too_small(code: int, message: str | None, chain: Sequence[x509.Certificate]) -> ErrorInfo:
    position = KEY_TOO_SMALL_CODES[code]
    which = "server certificate" if position == 0 else "CA certificate"
    key = ""
    if len(chain) > position:
        cert = chain[position]
        key = f" {name_of(cert.subject)} has a {key_description(cert)} key:"
    return ErrorInfo.of(
        ErrorKind.UNSUPPORTED_SERVER_KEY,
        f"The {which}{key} too weak for this client (OpenSSL: {message}, verify error {code}).",
        "Have the broker use an ECDSA P-256/P-384 or RSA 2048+ certificate (the quickstart CA "
        "issues P-256); a client at OpenSSL security level 2 refuses RSA keys below 2048 bits.",
        stage=Stage.VERIFY,
    )


def find_problem(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate] | None,
    server_name: str,
    now: datetime,
) -> ErrorInfo | None:
    """The first problem of ``chain``, in the order of the module's rule, or None.

    ``anchors=None`` means the trust anchors are unknown (``--insecure``
    without a CA): only validity, self-signature and the name are checked.
    """
    if not chain:
        return None
    leaf = chain[0]
    if anchors is None:
        for position, cert in enumerate(chain):
            error = _validity_error(cert, position, now)
            if error is not None:
                return error
        return None if name_matches(leaf, server_name) else hostname_error(leaf, server_name)
    path = build_path(chain, anchors)
    for position, cert in enumerate(path.certs):
        if cert in anchors:
            continue
        error = _validity_error(cert, position, now)
        if error is not None:
            return error
    if path.anchor is not None:
        return _anchored_reason(path, path.anchor, leaf, server_name, now)
    if is_self_signed(leaf):
        return ErrorInfo.of(
            ErrorKind.SELF_SIGNED_LEAF,
            f"The server presents a self-signed certificate ({name_of(leaf.subject)}), "
            "and the trust bundle does not hold it.",
        )
    return _unanchored_reason(path, chain, anchors)


def _validity_error(cert: x509.Certificate, position: int, now: datetime) -> ErrorInfo | None:
    which = "The server certificate" if position == 0 else "The intermediate CA certificate"
    label = f"{which} {name_of(cert.subject)}"
    window = f"valid {iso(cert.not_valid_before_utc)} to {iso(cert.not_valid_after_utc)}"
    if now < cert.not_valid_before_utc:
        return ErrorInfo.of(
            ErrorKind.CERT_NOT_YET_VALID,
            f"{label} is not valid yet: {window}, and the clock here says {iso(now)}.",
        )
    if now > cert.not_valid_after_utc:
        return ErrorInfo.of(
            ErrorKind.CERT_EXPIRED,
            f"{label} has expired ({_ago(cert.not_valid_after_utc, now)}): {window}, "
            f"and the clock here says {iso(now)}.",
        )
    return None


def _ago(moment: datetime, now: datetime) -> str:
    days = int((now - moment).total_seconds() // 86400)
    return "less than a day ago" if days == 0 else f"{days} day{'s' if days > 1 else ''} ago"


def _anchored_reason(
    path: ChainPath,
    anchor: x509.Certificate,
    leaf: x509.Certificate,
    server_name: str,
    now: datetime,
) -> ErrorInfo | None:
    if now > anchor.not_valid_after_utc or now < anchor.not_valid_before_utc:
        state = "expired" if now > anchor.not_valid_after_utc else "is not yet valid"
        return ErrorInfo.of(
            ErrorKind.CA_EXPIRED,
            f"The chain leads to the trusted CA {name_of(anchor.subject)}, which {state}: "
            f"valid {iso(anchor.not_valid_before_utc)} to {iso(anchor.not_valid_after_utc)}, "
            f"now {iso(now)}.",
        )
    issuers = [*path.certs[1:], anchor] if anchor is not leaf else []
    for issuer in issuers:
        if not is_ca(issuer) or not can_sign_certificates(issuer):
            what = "is not a CA (basicConstraints CA:TRUE missing)"
            if is_ca(issuer):
                what = "may not sign certificates (keyUsage lacks keyCertSign)"
            return ErrorInfo.of(
                ErrorKind.CA_INVALID,
                f"The certificate {name_of(issuer.subject)} that issued the chain {what}.",
            )
    if not is_self_signed(anchor) and anchor is not leaf:
        return ErrorInfo.of(
            ErrorKind.UNKNOWN_CA,
            f"The trusted certificate {name_of(anchor.subject)} is an intermediate CA, and "
            f"its issuer {name_of(anchor.issuer)} is not in the trust bundle.",
            f"Add the root CA {name_of(anchor.issuer)} to the trust bundle.",
        )
    if not name_matches(leaf, server_name):
        return hostname_error(leaf, server_name)
    return None


def _unanchored_reason(
    path: ChainPath, chain: Sequence[x509.Certificate], anchors: Sequence[x509.Certificate]
) -> ErrorInfo:
    top = path.top
    same_name = [a for a in anchors if a.subject == top.issuer]
    if same_name:
        stale = same_name[0]
        return ErrorInfo.of(
            ErrorKind.CA_ROTATED,
            f"The trust bundle holds {name_of(stale.subject)}, but the server's certificate was "
            f"signed by another key with that name ({_key_ids(top, stale)}): the CA was "
            "re-created and this copy of the bundle is stale.",
        )
    trusted = _trusted_names(anchors)
    if len(chain) == 1:
        return ErrorInfo.of(
            ErrorKind.INCOMPLETE_CHAIN,
            f"The server sent only its own certificate; its issuer {name_of(top.issuer)} was "
            f"neither sent nor trusted (trusted: {trusted}).",
            f"The server must send its intermediate CA {name_of(top.issuer)} after its "
            "certificate (append it to the listener's certificate file); if that CA is a "
            "root, trust it instead.",
        )
    origin = top if is_self_signed(top) else None
    issuer_text = (
        f"the root CA {name_of(origin.subject)}, which the server sent"
        if origin is not None
        else f"{name_of(top.issuer)}"
    )
    return ErrorInfo.of(
        ErrorKind.UNKNOWN_CA,
        f"The server's chain leads to {issuer_text}; it is not trusted (trusted: {trusted}).",
        f"Trust the CA that issued the broker's certificate ({name_of(top.issuer)}): for Azure IoT "
        f"Operations, the ConfigMap {aio.TRUST_BUNDLE_CONFIGMAP} (key {aio.TRUST_BUNDLE_KEY}), "
        "not the broker's internal CA.",
    )


def _key_ids(top: x509.Certificate, stale: x509.Certificate) -> str:
    # The key that signed the server's chain: the root's own when the server
    # sent it, else what the top certificate says of its issuer.
    server_key = subject_key_id(top) if is_self_signed(top) else authority_key_id(top)
    bundle_key = subject_key_id(stale)
    parts = []
    if server_key:
        parts.append(f"the server's CA key id {server_key.hex()[:16]}")
    if bundle_key:
        parts.append(f"the bundle's {bundle_key.hex()[:16]}")
    return ", ".join(parts) or "the signatures do not match"


def _trusted_names(anchors: Sequence[x509.Certificate]) -> str:
    if not anchors:
        return "none"
    return "; ".join(name_of(a.subject) for a in anchors)


# --- host names ------------------------------------------------------------------


def name_matches(cert: x509.Certificate, server_name: str) -> bool:
    """Whether ``server_name`` is a name of ``cert`` the way OpenSSL checks it.

    IP addresses match IP SANs only; DNS names match DNS SANs, with a wildcard
    allowed as the whole leftmost label; without a SAN extension, the CN
    (Python's default ``hostname_checks_common_name``).
    """
    sans = subject_alt_names(cert)
    try:
        wanted_ip = ipaddress.ip_address(server_name)
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        return any(s.startswith("IP:") and ipaddress.ip_address(s[3:]) == wanted_ip for s in sans)
    dns = [s[4:] for s in sans if s.startswith("DNS:")]
    if not sans:
        cn = common_name(cert.subject)
        dns = [cn] if cn else []
    return any(_dns_match(pattern, server_name) for pattern in dns)


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if pattern.startswith("*.") and "." in name:
        return name.split(".", 1)[1] == pattern[2:] and pattern.count(".") >= 2
    return False


def hostname_error(leaf: x509.Certificate, server_name: str) -> ErrorInfo:
    sans = subject_alt_names(leaf)
    listed = ", ".join(sans) if sans else f"no SAN, CN={common_name(leaf.subject)}"
    hint = (
        "Connect with a name the certificate lists, or verify against one of them with "
        "--server-name NAME."
    )
    broker_names = [s[4:] for s in sans if s.startswith(f"DNS:{aio.BROKER_SERVICE}")]
    local = server_name in ("localhost", "127.0.0.1", "::1")
    if broker_names and local:
        hint = (
            f"Through a port-forward the broker keeps its cluster names: add --server-name "
            f"{aio.BROKER_SERVICE} (TLS is still fully verified)."
        )
    elif sans:
        first = sans[0].split(":", 1)[1]
        hint = f"Connect to a name the certificate lists, or add --server-name {first}."
    return ErrorInfo.of(
        ErrorKind.HOSTNAME_MISMATCH,
        f"The server certificate is not valid for {server_name}: it lists {listed}.",
        hint,
    )


# --- OpenSSL's own words, when the certificates do not say more ---------------


def _from_openssl(
    code: int | None,
    message: str | None,
    chain: Sequence[x509.Certificate],
    server_name: str,
) -> ErrorInfo:
    said = f"OpenSSL: {message} (verify error {code})" if code is not None else "OpenSSL"
    kind = verify_code_kind(code)
    if kind is ErrorKind.HOSTNAME_MISMATCH and chain:
        return hostname_error(chain[0], server_name)
    return ErrorInfo.of(
        kind,
        f"The server certificate was rejected ({said}).",
        "Look at the chain the server sends: probe inspect HOST:PORT -v",
    )


# --- findings on success -----------------------------------------------------------


def findings(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    server_name: str,
    now: datetime,
) -> list[Finding]:
    """What is worth knowing about a chain OpenSSL accepted (or that --insecure let through)."""
    if not chain:
        return []
    path = build_path(chain, anchors)
    result: list[Finding] = []
    # The anchors' own expiry is the trust stage's to report; here, what the server sent.
    for cert in path.certs:
        soon = cert_findings.expires_soon(
            subject=name_of(cert.subject),
            is_ca=is_ca(cert),
            not_after=cert.not_valid_after_utc,
            now=now,
        )
        if soon is not None:
            result.append(soon)
    if any(is_quickstart_ca(c) for c in [*path.certs, *([path.anchor] if path.anchor else [])]):
        result.append(cert_findings.QUICKSTART_CHAIN)
    strict = strict_rejection(chain, anchors, server_name, now)
    if strict is not None:
        result.append(
            Finding(
                FindingCode.STRICT_VERIFICATION,
                "OpenSSL accepts this chain, but a strict RFC 5280 verifier (cryptography) "
                f"rejects it: {strict}. Clients with strict defaults (Python 3.13+, rustls) "
                "may refuse it.",
            )
        )
    return result


def strict_rejection(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    server_name: str,
    now: datetime,
) -> str | None:
    """cryptography's verdict on the chain (its path validation is strict), or None if it passes.

    ``x509.verification`` is documented as unstable: it is used here only.
    """
    if not anchors:
        return None
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    try:
        subject: x509.DNSName | x509.IPAddress = x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        subject = x509.DNSName(server_name)
    try:
        verifier = (
            PolicyBuilder().store(Store(list(anchors))).time(now).build_server_verifier(subject)
        )
        with quiet():  # a negative serial is a finding of certinfo's, not a warning
            verifier.verify(chain[0], list(chain[1:]))
    except (VerificationError, ValueError) as exc:
        return str(exc)
    return None
