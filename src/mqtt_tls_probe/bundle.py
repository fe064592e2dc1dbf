"""``probe bundle``: the trust bundle's CA certificates, described or written out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mqtt_tls_probe.certinfo import describe_all
from mqtt_tls_probe.config import ClusterOptions, TrustOptions
from mqtt_tls_probe.errors import EXIT_OK, ProbeError
from mqtt_tls_probe.model import CertInfo
from mqtt_tls_probe.trust import TrustBundle, load_trust


@dataclass(frozen=True)
class BundleReport:
    bundle: TrustBundle | None
    certificates: tuple[CertInfo, ...]
    error: ProbeError | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.error is None else self.error.exit_code


def bundle_report(
    ca_file: Path | None, cluster: ClusterOptions, timeout: float, now: datetime | None = None
) -> BundleReport:
    try:
        bundle = load_trust(TrustOptions(ca_file=ca_file, cluster=cluster), timeout)
    except ProbeError as error:
        return BundleReport(None, (), error)
    described = describe_all(bundle.certificates, now or datetime.now(UTC), as_trust_anchor=True)
    return BundleReport(bundle, described)


def write_pem(path: Path, bundle: TrustBundle) -> None:
    path.write_text(bundle.pem())
