"""A whole-target deadline that another thread can enforce: ``AbortHandle``.

A probe registers every socket it opens with its handle. When the deadline
passes, the scanner calls ``abort()`` from its own thread: each registered
connection is shut down (``SHUT_RDWR``), which wakes whatever call the probe's
thread is blocked in (connect, the handshake, paho's select) with an error at
once, and the probe unwinds, closing its sockets as usual.

Rule: the handle shuts down through a duplicate of each descriptor that it
owns, never through the probe's own socket objects. Closing or shutting down
the probe's descriptor from another thread would race the probe for the
descriptor *number* (the ssl module and OpenSSL keep using the number, and a
number closed here may already belong to another target's connection); a
duplicate names the same connection, and only this handle ever closes it
(``release``, when the probe is over).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class AbortHandle:
    """The deadline of one probe run, and the connections it may cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._duplicates: list[socket.socket] = []
        self._aborted = False

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        return self.deadline - time.monotonic()

    @property
    def aborted(self) -> bool:
        return self._aborted

    def expired(self) -> bool:
        """The deadline has passed, or the scanner has already cut the probe."""
        return self._aborted or self.remaining() <= 0

    def register(self, sock: socket.socket) -> None:
        """Let ``abort`` cut this connection; one registered after the abort is cut at once."""
        duplicate = sock.dup()
        with self._lock:
            self._duplicates.append(duplicate)
            if self._aborted:
                _cut(duplicate)

    def abort(self) -> None:
        """Shut down every registered connection (from any thread; idempotent)."""
        # Under the lock: release() cannot close a duplicate while it is being cut.
        with self._lock:
            self._aborted = True
            for duplicate in self._duplicates:
                _cut(duplicate)

    def release(self) -> None:
        """Close the duplicates: the probe is over and has closed its own sockets."""
        with self._lock:
            for duplicate in self._duplicates:
                duplicate.close()
            self._duplicates.clear()


def _cut(duplicate: socket.socket) -> None:
    # ENOTCONN (never connected, or already closed by the peer) is fine: nothing to wake.
    with contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)
