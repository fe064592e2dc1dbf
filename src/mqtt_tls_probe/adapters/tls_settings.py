"""What the local OpenSSL lets a client offer: versions, cipher lists, the key log file.

Rules of the module:
- A combination the local OpenSSL cannot offer is a ``UsageError`` found before any
  network I/O (``check_client_limits``), with the reason in words.
- ``--ciphers`` goes to ``SSLContext.set_ciphers``, which chooses TLS 1.2 (and older)
  suites only; TLS 1.3 suites cannot be chosen from Python's ``ssl`` (3.11 has no
  ``SSL_CTX_set_ciphersuites``). The context's security level (2 in Python's defaults)
  stays unless the list itself says ``@SECLEVEL=N`` (measured: ``set_ciphers`` without
  it leaves ``security_level`` at 2).
- TLS 1.0 and 1.1 are offered only at ``@SECLEVEL=0`` with OpenSSL 3 (their
  signature algorithms use SHA-1), and setting them as a version bound makes CPython
  warn (``DeprecationWarning: ssl.TLSVersion.TLSv1 is deprecated``); ``version_range``
  keeps that warning out of the user's way.
- The key log (``--tls-keylog``): CPython opens ``keylog_filename`` with ``fopen(path,
  "a")`` (``Modules/_ssl/debughelpers.c``), which would create it with mode 0666 minus
  the umask and follow symlinks. So the file is created here first, mode 0600,
  ``O_EXCL|O_NOFOLLOW``, and ssl only appends to it. A plain ``SSLContext`` never reads
  ``$SSLKEYLOGFILE`` (only ``ssl.create_default_context`` does).
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings
from pathlib import Path

from mqtt_tls_probe.errors import UsageError

VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
_version_warning_lock = threading.Lock()


def version_range(
    context: ssl.SSLContext, minimum: str | None = None, maximum: str | None = None
) -> None:
    """Bound the versions a context offers; TLS 1.0/1.1 without CPython's deprecation warning."""
    with _version_warning_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = VERSIONS[minimum]
        if maximum is not None:
            context.maximum_version = VERSIONS[maximum]


# --- connect's --tls-max, --ciphers and --tls-keylog --------------------------------------


def check_client_limits(tls_min: str | None, tls_max: str | None, ciphers: str | None) -> None:
    """Refuse a version range or cipher list the local OpenSSL cannot offer.

    Raises:
        UsageError: why the combination cannot be offered.
    """
    if tls_min is not None and tls_max is not None and tls_min > tls_max:
        raise UsageError(
            f"--tls-min {tls_min} is above --tls-max {tls_max}: no TLS version is left to offer"
        )
    if ciphers is None:
        return
    if tls_min == "1.3":
        raise UsageError(
            "--ciphers chooses TLS 1.2 suites, and --tls-min 1.3 offers none: TLS 1.3 "
            "suites cannot be chosen from Python's ssl (drop --ciphers, or lower --tls-min)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError as exc:
        raise UsageError(
            f"--ciphers {ciphers!r} selects no TLS 1.2 suite the local OpenSSL "
            f"({ssl.OPENSSL_VERSION}) offers at security level {context.security_level}: "
            f"{exc.args[-1] if exc.args else exc}; list them with: openssl ciphers -v "
            f"'{ciphers}'"
        ) from exc


def apply_client_limits(
    context: ssl.SSLContext, tls_max: str | None, ciphers: str | None, keylog: Path | None
) -> None:
    """``--tls-max``, ``--ciphers`` and ``--tls-keylog`` on a client context."""
    if tls_max is not None:
        version_range(context, maximum=tls_max)
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if keylog is not None:
        context.keylog_filename = str(keylog)  # appended to; created by create_keylog


def create_keylog(path: Path, *, force: bool) -> None:
    """Create the key log file empty, mode 0600, never through a symlink.

    With ``force`` an existing file (or symlink) is removed first; without it, an
    existing path is a usage error and is left untouched.

    Raises:
        UsageError: the path exists (without ``force``) or cannot be created.
    """
    if path.is_dir() and not path.is_symlink():
        raise UsageError(f"--tls-keylog {path} is a directory: name a file")
    if force and (path.is_symlink() or path.is_file()):
        path.unlink()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise UsageError(
            f"--tls-keylog {path} exists: it is not appended to; pass --force to replace it, "
            "or choose a new file"
        ) from exc
    except OSError as exc:
        raise UsageError(f"cannot create the key log file {path}: {exc.strerror}") from exc
    os.close(descriptor)
