"""The trust and verify stages of a success, from certificates read by ``core.lightcert``.

Rule: pure, and free of ``cryptography``. When OpenSSL has verified the chain,
what the report says about it (the trust anchors' findings, the chain's
expiry, the quickstart CA, a strict verifier's verdict) is computed here from
the light facts, in the same words as the ``cryptography`` path
(``core.cert_findings``). Whatever cannot be settled here (the strict verifier's
verdict when ``strict_accepts`` is unsure) returns None: the caller then takes
the ``cryptography`` path for the whole stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from mqtt_tls_probe.core import cert_findings
from mqtt_tls_probe.core.lightcert import (
    LightCert,
    can_sign_certificates,
    days_left,
    is_ca,
    is_quickstart_ca,
    read_light,
)
from mqtt_tls_probe.core.strict_profile import strict_accepts
from mqtt_tls_probe.model import CertInfo, Finding, Unparseable


def display_name(cert: LightCert) -> str:
    """The name a detail line gives a certificate: its CN, else its whole subject."""
    return cert.common_name or cert.subject_text


def anchor_warnings(anchors: Sequence[LightCert], now: datetime) -> list[Finding]:
    """What the trust stage warns about its anchors (expiry, CA fitness)."""
    warnings = []
    for anchor in anchors:
        for finding in _findings(anchor, now, as_trust_anchor=True):
            reported = cert_findings.trusted_ca_finding(finding, display_name(anchor))
            if reported is not None:
                warnings.append(reported)
    return warnings


def chain_warnings(
    path: Sequence[LightCert], anchor: LightCert, server_name: str, now: datetime
) -> list[Finding] | None:
    """The findings about a chain OpenSSL verified, or None when only cryptography can tell.

    ``path`` is OpenSSL's verified chain without its last certificate, ``anchor``.
    """
    if not strict_accepts(path, anchor, server_name, now):
        return None  # perhaps a strict verifier's rejection: cryptography says which
    warnings = []
    for cert in path:  # the anchor's own expiry is the trust stage's to report
        soon = cert_findings.expires_soon(
            subject=cert.subject_text, is_ca=is_ca(cert), not_after=cert.not_after, now=now
        )
        if soon is not None:
            warnings.append(soon)
    if any(is_quickstart_ca(cert) for cert in [*path, anchor]):
        warnings.append(cert_findings.QUICKSTART_CHAIN)
    return warnings


class ChainVerdict(NamedTuple):
    """What the verify stage says of a chain OpenSSL verified, from the light facts."""

    sent: tuple[LightCert, ...]  # the chain as the server sent it
    anchor: LightCert  # the first trusted certificate of the path
    issued_by_anchor: bool  # False when the leaf itself is trusted
    warnings: tuple[Finding, ...]


def verify_chain(
    sent: Sequence[bytes],
    verified: Sequence[bytes],
    anchors: Sequence[LightCert],
    server_name: str,
    now: datetime,
) -> ChainVerdict | None:
    """The verify stage's findings for ``sent``, which OpenSSL verified as ``verified``.

    None when only cryptography can tell (a certificate the light reader does not
    read, a chain the strict pre-check is unsure of). OpenSSL's verified chain runs
    on to a self-signed root; the report's path ends at the first trusted
    certificate, as ``verify.build_path``'s does: a CA file holding an
    intermediate and its root anchors the chain at the intermediate.
    """
    read = {der: read_light(der) for der in [*sent, *verified]}
    if not sent or any(cert is None for cert in read.values()):
        return None
    certs = [cert for cert in (read[der] for der in verified) if cert is not None]
    trusted = next((i for i, cert in enumerate(certs) if cert in anchors), None)
    if trusted is None:
        return None
    path = certs[: max(trusted, 1)]  # a trusted leaf is its own path, as in build_path
    found = chain_warnings(path, certs[trusted], server_name, now)
    if found is None:
        return None
    sent_certs = tuple(cert for cert in (read[der] for der in sent) if cert is not None)
    return ChainVerdict(sent_certs, certs[trusted], trusted > 0, tuple(found))


def describe(cert: LightCert, now: datetime, *, as_trust_anchor: bool = False) -> CertInfo:
    """``certinfo.describe`` from the light facts: the same description, field for field.

    Only ``self_signed`` may need cryptography: when the subject and the issuer
    are the same name, whether the certificate's own key made its signature.
    """
    basic = cert.basic_constraints
    constraints = None
    if basic is not None:
        ca, path_length, critical = basic
        constraints = "CA:TRUE" if ca else "CA:FALSE"
        if path_length is not None:
            constraints += f", pathlen:{path_length}"
        constraints += " (critical)" if critical else ""
    return CertInfo(
        subject=cert.subject_text,
        issuer=cert.issuer_text,
        serial=format(cert.serial, "x"),
        not_before=cert.not_before,
        not_after=cert.not_after,
        days_left=days_left(cert, now),
        sans=cert.sans,
        is_ca=is_ca(cert),
        key=cert.key_description,
        sha256=cert.sha256,
        signature_algorithm=cert.signature_algorithm,
        basic_constraints=constraints,
        key_usage=cert.key_usage or (),
        extended_key_usage=cert.extended_key_usage or (),
        ski=cert.ski.hex() if cert.ski is not None else None,
        aki=cert.aki.hex() if cert.aki is not None else None,
        self_signed=_self_signed(cert),
        findings=_findings(cert, now, as_trust_anchor=as_trust_anchor),
    )


def _findings(cert: LightCert, now: datetime, *, as_trust_anchor: bool) -> tuple[Finding, ...]:
    return cert_findings.certificate_findings(
        not_before=cert.not_before,
        not_after=cert.not_after,
        is_ca=is_ca(cert),
        can_sign=can_sign_certificates(cert),
        quickstart=is_quickstart_ca(cert),
        serial=cert.serial,
        now=now,
        as_trust_anchor=as_trust_anchor,
    )


def _self_signed(cert: LightCert) -> bool:
    """``certinfo.is_self_signed``: names compared as cryptography compares them, then the key."""
    if _as_compared(cert.subject.rdns) != _as_compared(cert.issuer.rdns):
        return False
    from mqtt_tls_probe.core import certinfo  # the signature check needs cryptography

    loaded = certinfo.load_der(cert.der)
    return not isinstance(loaded, Unparseable) and certinfo.is_self_signed(loaded)


def _as_compared(rdns: Sequence[Sequence[tuple[str, str]]]) -> list[frozenset[tuple[str, str]]]:
    """A name as ``x509.Name.__eq__`` sees it: each RDN a set of (OID, value), in order."""
    return [frozenset(rdn) for rdn in rdns]
