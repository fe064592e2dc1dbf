"""Record the TLS messages of connections through CPython's private message callback.

Rule of the module: the one place that touches ``SSLContext._msg_callback``. It only
stores what the callback hands over (bounded) and leaves all decoding to
``mqtt_tls_probe.core.tls_messages``. It never raises into OpenSSL's handshake, and
without the hook it does nothing.

The hook: CPython's ``Lib/ssl.py`` (``SSLContext._msg_callback`` property, wrapping the
callback to turn the integers into enums) and ``Modules/_ssl/debughelpers.c``
(``_PySSL_msg_callback``, installed with ``SSL_CTX_set_msg_callback``). Private, but
present from 3.8 to 3.13; ``trace_available()`` checks before use. Measured on CPython
3.11.7 with OpenSSL 3.0.19:

- ``conn`` is the ``ssl.SSLSocket`` that ``wrap_socket`` creates (the same object for
  every call of one connection; client and server side alike), or the
  ``ssl.SSLObject`` of ``wrap_bio``. debughelpers.c passes the owner through a weak
  reference, so ``None`` is possible if the owner is already gone; such calls are
  recorded under ``None``.
- The callback runs in the thread that drives the handshake or the read, with the
  GIL held, once per record header, handshake message, alert and ChangeCipherSpec
  (what arrives is listed in the core module's docstring).
- An exception raised by the callback does not stop OpenSSL: debughelpers.c stores
  it on the ``_SSLSocket`` and the handshake runs to its end (``version()`` then says
  TLSv1.3); afterwards the stored exception (the last one; earlier ones are lost) is
  raised from ``do_handshake`` or the read *instead of* its result. A good handshake
  thus turns into a failure, and ``wrap_socket`` closes the socket when it is an
  ``OSError`` or ``ValueError``. So ``_on_message`` catches everything and only counts
  its own failures (``failures``).
- One callback per context: installing replaces any other. ``install`` refuses a
  context that already has a foreign callback.

Concurrency: one context may be shared by many connections at once (a scan). The
recorder keys its records by the identity of ``conn``, so one recorder on one shared
context traces each connection separately: ``events(start, conn=sock)``. To get the
events of a handshake that fails, wrap with ``do_handshake_on_connect=False`` and call
``do_handshake()`` yourself: then you hold ``sock`` even when the handshake raises.
Call ``discard(sock)`` when done. ``events(start)`` without ``conn`` merges every
connection recorded, which is right for a context used by one connection at a time.

Cold start: recording must cost ``probe connect`` nothing it does not use. The
recorder stores plain tuples and imports the decoder (``core.tls_messages``, about 8 ms
of import on the development machine) only when records or events are read.

Memory: all connections together keep at most ``max_bytes`` (counting each record's
payload plus a fixed overhead); what does not fit is dropped and counted
(``dropped_records``, ``dropped_bytes``), as are connections beyond
``max_connections`` (the oldest stream is evicted first).
"""

from __future__ import annotations

import ssl
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from mqtt_tls_probe.core.tls_messages import Direction, RawRecord, TraceEvent

DEFAULT_MAX_BYTES: Final = 256 * 1024
DEFAULT_MAX_CONNECTIONS: Final = 256
_RECORD_OVERHEAD: Final = 64  # what one stored record costs besides its payload, roughly
_HOOK: Final = "_msg_callback"  # private attribute of ssl.SSLContext (Lib/ssl.py)
_DIRECTIONS: Final[dict[str, Direction]] = {"write": "sent", "read": "received"}
# One callback call: direction, version, content type, payload, time.perf_counter().
_Raw = tuple["Direction", int, int, bytes, float]


def trace_available() -> bool:
    """Whether this Python offers the message callback the recorder needs."""
    return hasattr(ssl.SSLContext, _HOOK)


class _Stream:
    """The records of one connection (a plain class: this module loads on every connect)."""

    __slots__ = ("order", "owner", "records", "size")

    def __init__(self, owner: Callable[[], object] | None, order: int) -> None:
        self.owner = owner  # weak reference to conn, when it allows one
        self.order = order  # creation order, for eviction
        self.records: list[_Raw] = []
        self.size = 0

    def belongs_to(self, conn: object) -> bool:
        # id() values are reused once an object is gone: a live weak reference to
        # another object means this stream is an old connection's.
        return self.owner is None or self.owner() is conn


def _weak(conn: object) -> Callable[[], object] | None:
    try:
        return weakref.ref(conn)
    except TypeError:  # None, or a type without weak references
        return None


def _as_int(value: object) -> int:
    """The ssl wrapper passes IntEnum members, or plain ints for unknown values."""
    return int(value) if isinstance(value, int) else -1


class HandshakeRecorder:
    """Stores the callback's records per connection, bounded; decodes on request."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._created = 0
        self._size = 0
        self.dropped_records = 0
        self.dropped_bytes = 0
        self.failures = 0

    # --- installation -------------------------------------------------------------

    def install(self, context: ssl.SSLContext) -> bool:
        """Put the recorder on ``context``; False when the hook is missing or taken."""
        if not trace_available():
            return False
        current = getattr(context, _HOOK, None)
        if current is not None and current != self._on_message:
            return False
        setattr(context, _HOOK, self._on_message)
        return True

    def uninstall(self, context: ssl.SSLContext) -> None:
        """Take the recorder off ``context`` (only if it is the one installed)."""
        if trace_available() and getattr(context, _HOOK, None) == self._on_message:
            setattr(context, _HOOK, None)

    # --- the callback --------------------------------------------------------------

    def _on_message(  # noqa: PLR0917 - the signature is CPython's (Lib/ssl.py)
        self,
        conn: object,
        direction: object,
        version: object,
        content_type: object,
        msg_type: object,
        data: object,
    ) -> None:
        """The callback: store, never raise (an exception would fail the handshake)."""
        del msg_type  # mislabelled for TLS 1.3 inner types; the type is in ``data``
        try:
            at = time.perf_counter()
            payload = bytes(data) if isinstance(data, bytes | bytearray | memoryview) else b""
            record: _Raw = (
                _DIRECTIONS.get(str(direction), "received"),
                _as_int(version),
                _as_int(content_type),
                payload,
                at,
            )
            self._store(conn, record)
        except Exception:  # anything escaping here would fail the handshake
            self.failures += 1

    def _store(self, conn: object, record: _Raw) -> None:
        cost = len(record[3]) + _RECORD_OVERHEAD
        with self._lock:
            if self._size + cost > self.max_bytes:
                self.dropped_records += 1
                self.dropped_bytes += len(record[3])
                return
            stream = self._stream_for(conn)
            stream.records.append(record)
            stream.size += cost
            self._size += cost

    def _stream_for(self, conn: object) -> _Stream:
        """The stream of ``conn``, new if needed (lock held)."""
        key = id(conn)
        stream = self._streams.get(key)
        if stream is not None and stream.belongs_to(conn):
            return stream
        if stream is not None:  # an earlier object with the same id: gone now
            self._drop(key)
        while len(self._streams) >= self.max_connections:
            self._drop(min(self._streams, key=lambda k: self._streams[k].order))
        self._created += 1
        stream = _Stream(_weak(conn), self._created)
        self._streams[key] = stream
        return stream

    def _drop(self, key: int) -> None:
        stream = self._streams.pop(key)
        self._size -= stream.size
        self.dropped_records += len(stream.records)
        self.dropped_bytes += sum(len(record[3]) for record in stream.records)

    # --- reading -------------------------------------------------------------------

    def records(self, conn: object | None = None) -> list[RawRecord]:
        """The stored records of ``conn``, or of every connection in time order."""
        from mqtt_tls_probe.core.tls_messages import RawRecord

        with self._lock:
            if conn is not None:
                stream = self._streams.get(id(conn))
                if stream is None or not stream.belongs_to(conn):
                    return []
                kept = list(stream.records)
            else:
                kept = [record for stream in self._streams.values() for record in stream.records]
                kept.sort(key=lambda record: record[4])
        return [RawRecord(*record) for record in kept]

    def events(self, start: float, conn: object | None = None) -> list[TraceEvent]:
        """Decoded events, ``ms`` relative to ``start`` (a ``time.perf_counter()``)."""
        from mqtt_tls_probe.core.tls_messages import build_events

        if conn is None:
            return self._merged_events(start)
        return build_events(self.records(conn), start)

    def _merged_events(self, start: float) -> list[TraceEvent]:
        # Each connection is decoded on its own (the decoder keeps per-connection
        # state: the negotiated version), then the events are put in time order.
        from mqtt_tls_probe.core.tls_messages import RawRecord, build_events

        with self._lock:
            streams = [list(stream.records) for stream in self._streams.values()]
        events = [
            event
            for records in streams
            for event in build_events([RawRecord(*r) for r in records], start)
        ]
        return sorted(events, key=lambda event: event.ms)

    def discard(self, conn: object) -> None:
        """Forget the records of ``conn`` (not counted as dropped)."""
        with self._lock:
            stream = self._streams.get(id(conn))
            if stream is not None and stream.belongs_to(conn):
                del self._streams[id(conn)]
                self._size -= stream.size

    def clear(self) -> None:
        with self._lock:
            self._streams.clear()
            self._size = 0
