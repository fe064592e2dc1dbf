"""Local files: the one bounded reader, the one safe writer, and the files connect's flags name.

Rules:
- a file's content never reaches output; what is reported about a file is its
  path and what it looks like;
- reading never blocks and never grows without bound: only regular files and
  pipes are read (a device such as /dev/zero, a directory or a socket is an
  error before any read), at most a cap of bytes, and a pipe only until its
  writer closes it or ``wait`` seconds pass;
- writing never follows a symbolic link and never replaces a file by accident:
  a new file is created exclusively, and an existing one (with ``replace``) is
  swapped atomically for a complete new file.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import tempfile
import time
from pathlib import Path

from mqtt_tls_probe.config import ClientIdentity
from mqtt_tls_probe.errors import UsageError

CERT_FILE_LIMIT = 1 << 20  # CA bundles, certificates and keys: a few KiB each in practice
SECRET_FILE_LIMIT = 64 << 10  # passwords and tokens: MQTT carries at most 65,535 bytes
DEFAULT_PIPE_WAIT = 10.0
_CHUNK = 64 << 10
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KIND_NAMES = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class LocalFileError(Exception):
    """A local file that cannot be read as one: its path and why, in words.

    ``unreadable`` is true when the file could not be found or opened at all,
    false when it was there but is no file (a device, a directory) or too large.
    """

    def __init__(self, path: Path, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason
        self.unreadable = unreadable


def read_local_file(path: Path, limit: int, wait: float = DEFAULT_PIPE_WAIT) -> bytes:
    """The content of the regular file or pipe at ``path``: at most ``limit`` bytes, never blocking.

    A pipe (a FIFO, or the shell's ``<(kubectl create token ...)``) is read until
    its writer closes it, for at most ``wait`` seconds; one with no writer is
    an error at once.

    Raises:
        LocalFileError: missing, unopenable, not a regular file or pipe, larger
            than ``limit``, or a pipe whose writer did not finish in time.
    """
    # stat first: opening a device can have effects of its own (a tape rewinds).
    _check_kind(path, _stat(path).st_mode)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise LocalFileError(path, f"cannot be opened: {exc.strerror}", unreadable=True) from exc
    try:
        mode = os.fstat(fd).st_mode
        _check_kind(path, mode)  # it may have been swapped since the stat
        regular = stat.S_ISREG(mode)
        data = _read_regular(fd, limit) if regular else _read_pipe(fd, path, limit, wait)
    except OSError as exc:
        raise LocalFileError(path, f"cannot be read: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if len(data) > limit:
        raise LocalFileError(path, f"is larger than {_size(limit)}, more than such a file holds")
    return data


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError as exc:
        raise LocalFileError(path, "does not exist", unreadable=True) from exc
    except OSError as exc:
        raise LocalFileError(path, f"cannot be read: {exc.strerror}", unreadable=True) from exc
    except ValueError as exc:  # an embedded NUL: no file has such a name
        raise LocalFileError(path, "is not a valid file name", unreadable=True) from exc


def _check_kind(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return
    kind = _KIND_NAMES.get(stat.S_IFMT(mode), "not a regular file")
    raise LocalFileError(path, f"is {kind}, not a regular file")


def _read_regular(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= limit:  # one byte past the cap tells "too large" from "exactly the cap"
        chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_pipe(fd: int, path: Path, limit: int, wait: float) -> bytes:
    deadline = time.monotonic() + wait
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - size))
        except BlockingIOError:  # a writer is there, with nothing written yet
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalFileError(
                    path, f"is a pipe whose writer did not finish within {wait:g} s"
                ) from None
            select.select([fd], [], [], remaining)
            continue
        if not chunk:  # end of file: the writer closed it, or there never was one
            if not chunks:
                raise LocalFileError(path, "is a pipe (FIFO) with no writer: nothing to read")
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"


# --- writing -------------------------------------------------------------------


def check_output_path(path: Path, *, replace: bool) -> None:
    """Before any work: can ``path`` be written as a new file (or replaced, with ``replace``)?

    Raises:
        UsageError: the path exists (without ``replace``), is a directory or
            another non-file, or its directory is missing or no directory.
    """
    try:
        existing: int | None = stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        existing = None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot write {path}: {_why(exc)}") from exc
    if existing == stat.S_IFDIR:
        raise UsageError(f"cannot write {path}: it is a directory; name a file in it")
    if existing not in (None, stat.S_IFREG, stat.S_IFLNK):  # never replace a device or FIFO
        kind = _KIND_NAMES.get(existing or 0, "a FIFO")
        raise UsageError(f"cannot write {path}: it is {kind}, not a file to replace")
    if existing is not None and not replace:
        raise UsageError(f"refusing to overwrite {path}: pass --force to replace it")
    parent = path.parent
    try:
        parent_mode: int | None = parent.stat().st_mode
    except FileNotFoundError:
        parent_mode = None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {_why(exc)}") from exc
    if parent_mode is None or not stat.S_ISDIR(parent_mode):
        state = "does not exist" if parent_mode is None else "is not a directory"
        raise UsageError(f"cannot write {path}: its directory {parent} {state}")


def write_file(path: Path, data: bytes, *, mode: int = 0o644, replace: bool = False) -> None:
    """Write ``data`` to ``path`` with ``mode``, never through a symbolic link.

    Without ``replace`` the file must not exist (a dangling link counts as
    existing). With it, a complete temporary file in the same directory takes
    the path's place atomically: a link there is replaced, not followed, and a
    reader never sees half a file.

    Raises:
        UsageError: the path exists (without ``replace``) or cannot be written,
            with the path and the reason.
    """
    try:
        if replace:
            _replace_atomically(path, data, mode)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            _fill(fd, data, mode)
    except FileExistsError as exc:
        raise UsageError(f"refusing to overwrite {path}: pass --force to replace it") from exc
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot write {path}: {_why(exc)}") from exc


def _replace_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        _fill(fd, data, mode)
        temporary.replace(path)  # rename(2): a link at path is replaced, not followed
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _fill(fd: int, data: bytes, mode: int) -> None:
    """Write all of ``data`` to ``fd``, set ``mode`` whatever the umask, and close it."""
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _why(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "not a valid file name" if isinstance(exc, ValueError) else str(exc)


# --- connect's files -------------------------------------------------------------


def read_secret_file(path: Path, what: str, wait: float = DEFAULT_PIPE_WAIT) -> bytes:
    """A password or token file, without the one trailing newline editors and kubectl leave.

    Raises:
        UsageError: the file cannot be read (see ``read_local_file``), or is empty.
    """
    try:
        data = read_local_file(path, SECRET_FILE_LIMIT, wait)
    except LocalFileError as exc:
        raise UsageError(f"cannot read the {what} file: {exc}") from exc
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise UsageError(f"the {what} file {path} is empty")
    return data


def load_client_identity(
    cert_file: Path, key_file: Path, wait: float = DEFAULT_PIPE_WAIT
) -> ClientIdentity:
    """Check that ``key_file`` holds the private key of ``cert_file``'s certificate.

    Raises:
        UsageError: unreadable files, or a key that belongs to another certificate.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    from mqtt_tls_probe.core.certinfo import describe_content, name_of, parse_certificates

    try:
        cert_data = read_local_file(cert_file, CERT_FILE_LIMIT, wait)
        key_data = read_local_file(key_file, CERT_FILE_LIMIT, wait)
    except LocalFileError as exc:
        raise UsageError(f"cannot read the client certificate or key: {exc}") from exc
    try:
        certs = parse_certificates(cert_data)
    except ValueError as exc:
        raise UsageError(f"{cert_file} holds no valid certificate: {exc}") from exc
    if not certs:
        raise UsageError(f"{cert_file} holds no certificate: {describe_content(cert_data)}")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{key_file} holds no unencrypted PEM private key") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        cert_key = certs[0].public_key().public_bytes(*spki)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise UsageError(f"{cert_file} holds a certificate whose key is not supported") from exc
    if key.public_key().public_bytes(*spki) != cert_key:
        raise UsageError(
            f"the key in {key_file} does not belong to the certificate in {cert_file} "
            f"({name_of(certs[0].subject)}): pass the matching --key"
        )
    return ClientIdentity(cert_file, key_file, name_of(certs[0].subject))
