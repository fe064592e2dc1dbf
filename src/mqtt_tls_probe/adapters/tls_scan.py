"""One short TLS handshake per question, for ``probe tls``: what the server answered.

Rules of the module:
- Each ``attempt`` opens its own TCP connection and its own client context (no
  verification: ``probe tls`` reads the chain, it does not trust it), records the
  handshake with its own recorder, and closes. Nothing but the handshake is sent.
- Every wait is bounded by ``timeout``: the TCP connect, the handshake, and the short
  read after it (``linger``), which is where TLS 1.3 delivers session tickets and a
  server's verdict on the client.
- What the server *answered* is read from the trace, not only from whether the
  handshake completed: a ServerHello choosing TLS 1.2 means TLS 1.2 is accepted even if
  the handshake then fails on a missing client certificate.
- ``SSLSocket.session`` is read at most once per connection (each read leaks about
  6 KB in CPython 3.11, python/cpython#116810), and only for the resumption question.
"""

from __future__ import annotations

import select
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mqtt_tls_probe.adapters import tls_trace
from mqtt_tls_probe.adapters.net import Address
from mqtt_tls_probe.adapters.tls_settings import version_range
from mqtt_tls_probe.adapters.tls_suites import EVERY_SUITE
from mqtt_tls_probe.core.tls_scan import Answer

if TYPE_CHECKING:
    from mqtt_tls_probe.core.tls_messages import TraceEvent

# OpenSSL reasons for a handshake the local library refused to start: nothing was sent.
LOCAL_REFUSALS = frozenset(
    {"NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "NO_CIPHER_MATCH", "NO_SUITABLE_GROUPS"}
)


@dataclass(frozen=True)
class Offer:
    """What the client offers in one attempt."""

    minimum: str | None = None  # "1.0" .. "1.3"; None: Python's default (1.2)
    maximum: str | None = None
    ciphers: str = EVERY_SUITE  # TLS 1.2 (and older) suites, in the client's order
    alpn: tuple[str, ...] = ()
    linger: float = 0.0  # seconds to read after the handshake (tickets, a verdict)
    # Decode what the client sent too (its ClientHello costs most of the decoding);
    # a suite question needs only the server's answer.
    full_trace: bool = True


def attempt(address: Address, server_name: str, offer: Offer, timeout: float) -> Answer:
    """One handshake with ``offer``; never raises for what the network or the peer does."""
    try:
        context = _context(offer)
    except ssl.SSLError as exc:  # a suite this OpenSSL cannot offer after all
        return Answer(tried=False, reason=getattr(exc, "reason", None) or str(exc))
    recorder = tls_trace.HandshakeRecorder() if tls_trace.trace_available() else None
    if recorder is not None and not recorder.install(context):
        recorder = None
    try:
        sock = socket.create_connection(address.sockaddr[:2], timeout=timeout)
    except OSError as exc:
        return Answer(tried=False, network_error=str(exc))
    start = time.perf_counter()
    tls = context.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    view = _handshake(tls, offer.linger)
    traced = _read_trace(recorder, tls, start, full=offer.full_trace) if recorder else None
    tls.close()
    return _answer(view, traced)


def _read_trace(
    recorder: tls_trace.HandshakeRecorder, conn: ssl.SSLSocket, start: float, *, full: bool
) -> tuple[bool, tuple[TraceEvent, ...]]:
    """(whether a ClientHello left, the events decoded)."""
    from mqtt_tls_probe.core.tls_messages import HANDSHAKE, build_events

    records = recorder.records(conn)
    tried = any(r.direction == "sent" and r.content_type == HANDSHAKE for r in records)
    if not full:
        records = [record for record in records if record.direction == "received"]
    return tried, tuple(build_events(records, start))


@dataclass(frozen=True)
class _SslView:
    """What the ssl module says of a handshake (all there is without a trace)."""

    completed: bool = False
    reason: str | None = None
    timed_out: bool = False
    version: str | None = None
    suite: str | None = None
    alpn: str | None = None


def _handshake(tls: ssl.SSLSocket, linger: float) -> _SslView:
    try:
        tls.do_handshake()
    except TimeoutError:
        return _SslView(timed_out=True)
    except ssl.SSLError as exc:
        return _SslView(reason=exc.reason or type(exc).__name__)
    except OSError as exc:
        return _SslView(reason=type(exc).__name__)
    cipher = tls.cipher()
    return _SslView(
        completed=True,
        reason=_linger(tls, linger) if linger > 0 else None,
        version=tls.version(),
        suite=cipher[0] if cipher else None,
        alpn=tls.selected_alpn_protocol(),
    )


def _context(offer: Offer) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers(offer.ciphers)
    version_range(context, offer.minimum, offer.maximum)
    if offer.alpn:
        context.set_alpn_protocols(list(offer.alpn))
    return context


def _linger(tls: ssl.SSLSocket, window: float) -> str | None:
    """Read once after the handshake; the reason of an alert, or None.

    Stops at the first thing the server sends: a ticket (a handshake record: the read
    wants more), an alert (an SSLError), data, or the end of ``window``.
    """
    deadline = time.monotonic() + window
    tls.setblocking(False)
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([tls], [], [], remaining)
            if not readable:
                return None
            try:
                tls.recv(1)
            except ssl.SSLWantReadError:
                return None  # a session ticket (or another handshake message) was read
            except ssl.SSLError as exc:
                return exc.reason or type(exc).__name__
            except OSError as exc:
                return type(exc).__name__
            return None
        return None
    finally:
        tls.settimeout(window)


def _answer(view: _SslView, traced: tuple[bool, tuple[TraceEvent, ...]] | None) -> Answer:
    """The answer from the trace (``traced``), or from the ssl module alone (None)."""
    if traced is None:
        return Answer(
            tried=view.reason not in LOCAL_REFUSALS,
            completed=view.completed,
            version=view.version,
            suite=view.suite,
            alpn=view.alpn,
            reason=view.reason,
            timed_out=view.timed_out,
        )
    tried, events = traced
    version = suite = alpn = alert = None
    for event in events:
        if event.direction != "received":
            continue
        if event.type == "ServerHello":
            version = _text(event.fields.get("version"))
            suite = _text(event.fields.get("cipher_suite"))
        if event.type in ("ServerHello", "EncryptedExtensions") and "alpn" in event.fields:
            alpn = _text(event.fields.get("alpn"))  # TLS 1.2: ServerHello; 1.3: EE
        if event.type == "Alert" and alert is None:
            alert = _text(event.fields.get("description"))
    return Answer(
        tried=tried,
        traced=True,
        completed=view.completed,
        version=version,
        suite=suite,
        alpn=alpn,
        reason=view.reason,
        alert=alert,
        timed_out=view.timed_out,
        events=events,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# --- session resumption ---------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    """A handshake, then a second one offering the first one's session."""

    first: Answer
    ticket: bool  # the server issued a NewSessionTicket
    ticket_lifetime_s: int | None
    reused: bool | None  # None: there was no session to offer


def resume(address: Address, server_name: str, timeout: float, linger: float) -> Resumed:
    """Whether the server resumes a session (TLS 1.3 tickets, TLS 1.2 tickets or ids)."""
    context = _context(Offer())
    recorder = tls_trace.HandshakeRecorder() if tls_trace.trace_available() else None
    if recorder is not None and not recorder.install(context):
        recorder = None
    try:
        session, first = _first_session(
            context,
            recorder=recorder,
            address=address,
            server_name=server_name,
            timeout=timeout,
            linger=linger,
        )
    except OSError as exc:
        return Resumed(Answer(tried=False, network_error=str(exc)), False, None, None)
    tickets = [e for e in first.events if e.type == "NewSessionTicket"]
    lifetime = tickets[0].fields.get("lifetime_s") if tickets else None
    lifetime_s = lifetime if isinstance(lifetime, int) else None
    if session is None:
        return Resumed(first, bool(tickets), lifetime_s, None)
    try:
        with socket.create_connection(address.sockaddr[:2], timeout=timeout) as sock:
            second = context.wrap_socket(sock, server_hostname=server_name, session=session)
            reused = second.session_reused
            second.close()
    except (OSError, ssl.SSLError):
        reused = False
    return Resumed(first, bool(tickets), lifetime_s, reused)


def _first_session(
    context: ssl.SSLContext,
    *,
    recorder: tls_trace.HandshakeRecorder | None,
    address: Address,
    server_name: str,
    timeout: float,
    linger: float,
) -> tuple[ssl.SSLSession | None, Answer]:
    sock = socket.create_connection(address.sockaddr[:2], timeout=timeout)
    start = time.perf_counter()
    tls = context.wrap_socket(sock, server_hostname=server_name, do_handshake_on_connect=False)
    session = None
    reason = None
    completed = False
    try:
        tls.do_handshake()
        completed = True
        reason = _linger(tls, linger)
        session = tls.session  # read once: see the module's rule
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
    events = tuple(recorder.events(start, conn=tls)) if recorder is not None else ()
    version = tls.version() if completed else None
    tls.close()
    answer = Answer(
        tried=True,
        completed=completed,
        version=version,
        reason=reason,
        events=events,
        traced=recorder is not None,
    )
    usable = session is not None and (session.has_ticket or bool(session.id))
    return (session if usable and reason is None else None), answer


def run_all(
    address: Address, server_name: str, offers: Sequence[Offer], timeout: float, workers: int
) -> list[Answer]:
    """Every offer, ``workers`` at a time; answers in the order of ``offers``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe-tls") as pool:
        return list(pool.map(lambda offer: attempt(address, server_name, offer, timeout), offers))
