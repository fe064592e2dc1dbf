"""The ``trust`` stage's I/O: the CA certificates a client must trust, from a file or the cluster.

Only a run that reads the cluster imports ``adapters.cluster`` (and so the
Kubernetes client); ``cluster`` never imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from mqtt_tls_probe.adapters import files
from mqtt_tls_probe.config import TrustOptions
from mqtt_tls_probe.core.lightcert import LightCert, pem_blocks, read_light
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import TrustBundle, TrustSource


class LightBundle(NamedTuple):
    """A CA file whose every certificate ``core.lightcert`` read: no cryptography needed yet."""

    location: str
    data: bytes  # the file as read: PEM and nothing else, for OpenSSL and, on demand, cryptography
    anchors: tuple[LightCert, ...]


def load_trust(options: TrustOptions, timeout: float) -> TrustBundle:
    """The trust anchors the options name.

    Raises:
        ProbeError: a ``trust`` kind.
    """
    if options.ca_file is not None:
        return load_ca_file(options.ca_file, timeout)
    if options.insecure:
        return TrustBundle(TrustSource.NONE, "--insecure", ())
    from mqtt_tls_probe.adapters.cluster import read_trust_bundle  # the Kubernetes client

    return read_trust_bundle(options.cluster, timeout)


def load_ca_file(path: Path, wait: float = files.DEFAULT_PIPE_WAIT) -> TrustBundle:
    from mqtt_tls_probe.core.trust_bundle import read_bundle  # cryptography: only when needed

    data = read_certificate_file(path, "The CA file", wait)
    return read_bundle(TrustSource.FILE, str(path), data)


def load_ca_file_light(
    path: Path, wait: float = files.DEFAULT_PIPE_WAIT
) -> LightBundle | TrustBundle:
    """The CA file read by ``core.lightcert`` when it can read all of it, else by cryptography.

    Raises:
        ProbeError: as ``load_ca_file``.
    """
    data = read_certificate_file(path, "The CA file", wait)
    blocks = pem_blocks(data) or []
    anchors = [read_light(der) for der in blocks]
    light = [anchor for anchor in anchors if anchor is not None]
    if blocks and len(light) == len(blocks):
        return LightBundle(str(path), data, tuple(light))
    from mqtt_tls_probe.core.trust_bundle import read_bundle  # cryptography: only when needed

    return read_bundle(TrustSource.FILE, str(path), data)


def read_certificate_file(path: Path, what: str, wait: float = files.DEFAULT_PIPE_WAIT) -> bytes:
    """The bytes of a certificate file (at most 1 MiB), read without ever blocking.

    Raises:
        ProbeError: ``trust_bundle_not_found`` when it is missing or cannot be
            opened, ``trust_bundle_invalid`` when it is no file (a device, a
            directory, a pipe without a writer) or too large.
    """
    try:
        return files.read_local_file(path, files.CERT_FILE_LIMIT, wait)
    except files.LocalFileError as exc:
        if exc.unreadable:
            raise ProbeError(
                ErrorKind.TRUST_BUNDLE_NOT_FOUND,
                f"{what} {exc}.",
                "Pass the broker's CA: probe bundle --out ca.crt fetches it from the cluster, "
                "probe certs init makes a development one.",
            ) from exc
        raise ProbeError(
            ErrorKind.TRUST_BUNDLE_INVALID,
            f"{what} {exc}.",
            "Give a file that holds PEM certificates (a CA bundle is a few KiB).",
        ) from exc
