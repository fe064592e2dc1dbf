"""Side files a run writes besides stdout (``--junit FILE``), opened before the run.

Rule: the file is opened (created if need be) before any network I/O, so that
an unwritable path is a usage error (exit 2) that costs no probe; it is never
written through a symbolic link (``O_NOFOLLOW``: a link planted at a
predictable CI path must not redirect the write) and must be a regular file
(``O_NONBLOCK`` keeps a FIFO from blocking the open). A file this run created
and never wrote (a bug stopped the run) is removed again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from mqtt_tls_probe.errors import UsageError

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MODE = 0o644  # a CI artifact: readable by whoever publishes it (umask applies)


class ReportFile:
    """An open, empty-on-write regular file; ``write`` replaces its content once."""

    def __init__(self, path: Path, fd: int, *, created: bool) -> None:
        self.path = path
        self._fd = fd
        self.created = created
        self.written = False

    def write(self, data: bytes) -> None:
        """Replace the file's content with ``data``.

        Raises:
            UsageError: the write failed (a full disk, a quota).
        """
        try:
            os.ftruncate(self._fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror}") from exc
        self.written = True

    def close(self) -> None:
        if self.created and not self.written:
            self._remove_if_still_ours()
        os.close(self._fd)

    def _remove_if_still_ours(self) -> None:
        with contextlib.suppress(OSError):
            mine, there = os.fstat(self._fd), self.path.lstat()
            if (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
                self.path.unlink()


def open_report_file(path: Path) -> ReportFile:
    """Open ``path`` for a report written after the run.

    Raises:
        UsageError: a symbolic link, not a regular file, or not writable.
    """
    existed = path.exists() or path.is_symlink()
    try:
        fd = os.open(path, _FLAGS, _MODE)
    except OSError as exc:
        raise UsageError(_refusal(path, exc)) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UsageError(f"cannot write {path}: not a regular file")
    return ReportFile(path, fd, created=not existed)


@contextlib.contextmanager
def report_file(path: Path) -> Iterator[ReportFile]:
    """``open_report_file`` as a context: closed (and removed if created but unwritten) after."""
    opened = open_report_file(path)
    try:
        yield opened
    finally:
        opened.close()


def _refusal(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"cannot write {path}: it is a symbolic link (refusing to write through it)"
    if exc.errno == errno.EISDIR:
        return f"cannot write {path}: it is a directory"
    return f"cannot write {path}: {exc.strerror}"
