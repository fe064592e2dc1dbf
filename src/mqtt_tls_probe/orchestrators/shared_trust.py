"""What every probe of a scan (or of a ``--repeat`` series) shares: the trust, prepared once.

Rule: one trust configuration, one read of the bundle and one SSL context. The
context depends only on the anchors, the TLS options and whether to verify,
which every target of a scan has in common (the server name is given per
connection), and OpenSSL builds a context in about a millisecond: a scan must
not pay that per target. The bundle is described once too, and the chains
the servers send once per distinct chain (``core.memo``). A bundle that
cannot be read is kept as the error every probe's trust stage reports.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import datetime

from mqtt_tls_probe.adapters import tls
from mqtt_tls_probe.adapters.trust import load_trust
from mqtt_tls_probe.config import ProbeConfig
from mqtt_tls_probe.core import certinfo
from mqtt_tls_probe.core.memo import CertificateMemo
from mqtt_tls_probe.errors import ErrorInfo, ProbeError
from mqtt_tls_probe.model import TrustBundle, TrustInfo, TrustSource


@dataclass(frozen=True)
class SharedTrust:
    bundle: TrustBundle
    described: TrustInfo
    context: ssl.SSLContext | None = None  # None when the bundle could not be read
    error: ErrorInfo | None = None  # the trust stage's failure, for every probe
    memo: CertificateMemo = field(default_factory=CertificateMemo)  # chains seen so far


def prepare_trust(config: ProbeConfig, now: datetime) -> SharedTrust:
    """Read the trust anchors ``config`` names and build the client context, once."""
    try:
        bundle = load_trust(config.trust, config.timeout)
    except ProbeError as exc:
        nothing = TrustBundle(TrustSource.NONE, "", ())
        return SharedTrust(nothing, TrustInfo(TrustSource.NONE, ""), error=exc.info)
    pem = certinfo.to_pem(bundle.certificates).decode("ascii")
    context = tls.build_context(pem or None, config.tls, verify=not config.trust.insecure)
    described = TrustInfo(
        bundle.source,
        bundle.location,
        certinfo.describe_all(bundle.certificates, now, as_trust_anchor=True),
    )
    return SharedTrust(bundle, described, context)
