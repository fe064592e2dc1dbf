"""The ``trust`` stage: the CA certificates a client must trust, from a file or the cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from mqtt_tls_probe.certinfo import describe_content, parse_certificates
from mqtt_tls_probe.config import TrustOptions
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustSource


@dataclass(frozen=True)
class TrustBundle:
    source: TrustSource
    location: str  # a path, or namespace/configmap[key]
    certificates: tuple[x509.Certificate, ...]
    note: str = ""  # e.g. which of the default ConfigMaps was used

    def pem(self) -> str:
        from mqtt_tls_probe.certinfo import to_pem

        return to_pem(self.certificates).decode("ascii")


def load_trust(options: TrustOptions, timeout: float) -> TrustBundle:
    """The trust anchors the options name.

    Raises:
        ProbeError: a ``trust`` kind.
    """
    if options.ca_file is not None:
        return load_ca_file(options.ca_file)
    if options.insecure:
        return TrustBundle(TrustSource.NONE, "--insecure", ())
    from mqtt_tls_probe.cluster import read_trust_bundle  # imports the Kubernetes client

    return read_trust_bundle(options.cluster, timeout)


def load_ca_file(path: Path) -> TrustBundle:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_NOT_FOUND,
            f"The CA file {path} does not exist.",
            "Pass the broker's CA: probe bundle --out ca.crt fetches it from the cluster, "
            "probe certs init makes a development one.",
        ) from exc
    except OSError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_NOT_FOUND,
            f"The CA file {path} cannot be read: {exc.strerror}.",
            "Check the path and its permissions.",
        ) from exc
    certs = bundle_certificates(data, str(path))
    return TrustBundle(TrustSource.FILE, str(path), tuple(certs))


def bundle_certificates(data: bytes, where: str) -> list[x509.Certificate]:
    """The certificates of a bundle, or ``trust_bundle_invalid`` saying what is there instead."""
    try:
        certs = parse_certificates(data)
    except ValueError as exc:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds a PEM certificate block that does not parse: {exc}.",
        ) from exc
    if not certs:
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{where} holds no certificate: {describe_content(data)}.",
        )
    return certs
