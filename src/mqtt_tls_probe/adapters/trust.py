"""The ``trust`` stage's I/O: the CA certificates a client must trust, from a file or the cluster.

Only a run that reads the cluster imports ``adapters.cluster`` (and so the
Kubernetes client); ``cluster`` never imports this module.
"""

from __future__ import annotations

from pathlib import Path

from mqtt_tls_probe.config import TrustOptions
from mqtt_tls_probe.core.trust_bundle import read_bundle
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle, TrustSource


def load_trust(options: TrustOptions, timeout: float) -> TrustBundle:
    """The trust anchors the options name.

    Raises:
        ProbeError: a ``trust`` kind.
    """
    if options.ca_file is not None:
        return load_ca_file(options.ca_file)
    if options.insecure:
        return TrustBundle(TrustSource.NONE, "--insecure", ())
    from mqtt_tls_probe.adapters.cluster import read_trust_bundle  # the Kubernetes client

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
    return read_bundle(TrustSource.FILE, str(path), data)
