"""The handshake recorder on real TLS connections over 127.0.0.1.

Peers: CPython ``ssl`` servers from ``tests/servers.py`` and, where a third-party
peer shows something a CPython server cannot (CA names in a CertificateRequest, a
HelloRetryRequest, a chosen TLS 1.2 suite), ``openssl s_server``. Every socket has a
timeout, every process is killed in ``finally``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mqtt_tls_probe.adapters import tls_trace
from mqtt_tls_probe.adapters.tls_trace import HandshakeRecorder, trace_available
from mqtt_tls_probe.core.tls_messages import HandshakeSummary, TraceEvent
from mqtt_tls_probe.dev.pki import (
    CertAndKey,
    create_root_ca,
    issue_client_certificate,
    issue_server_certificate,
)
from tests.servers import TcpServer, free_port, server_context, tls_handler, write_chain

pytestmark = pytest.mark.skipif(not trace_available(), reason="no SSLContext._msg_callback")

TIMEOUT = 5.0
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
ROOT_CN = "CN=Azure IoT Operations Quickstart Root CA - Not for Production"


@dataclass(frozen=True)
class Pki:
    root: CertAndKey
    server_cert: Path  # the leaf only
    server_chain: Path  # leaf and root
    server_key: Path
    ca_file: Path  # the root that issued the server and the good client certificate
    other_ca_file: Path  # a root that issued nothing here
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate from another CA
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("trace-pki")
    root = create_root_ca()
    other = create_root_ca("Some Other CA")
    leaf = issue_server_certificate(root, ["127.0.0.1", "localhost"])
    chain_file, key_file = write_chain(directory, [leaf, root])
    files = {
        "server.crt": leaf.cert_pem(),
        "ca.crt": root.cert_pem(),
        "other-ca.crt": other.cert_pem(),
    }
    client = issue_client_certificate(root)
    stranger = issue_client_certificate(other, "stranger")
    files |= {"client.crt": client.cert_pem(), "client.key": client.key_pem()}
    files |= {"stranger.crt": stranger.cert_pem(), "stranger.key": stranger.key_pem()}
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(
        root=root,
        server_cert=directory / "server.crt",
        server_chain=chain_file,
        server_key=key_file,
        ca_file=directory / "ca.crt",
        other_ca_file=directory / "other-ca.crt",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        stranger_cert=directory / "stranger.crt",
        stranger_key=directory / "stranger.key",
    )


# --- helpers ------------------------------------------------------------------------


def client_context(
    ca_file: Path | None,
    *,
    cert: tuple[Path, Path] | None = None,
    max_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cafile=ca_file)
    if cert is not None:
        context.load_cert_chain(*cert)
    if max_version is not None:
        context.maximum_version = max_version
    return context


@dataclass
class Outcome:
    events: list[TraceEvent]
    error: Exception | None
    version: str | None
    cipher: str | None

    def kinds(self) -> list[tuple[str, str]]:
        return [(event.direction, event.type) for event in self.events]

    def first(self, direction: str, kind: str) -> TraceEvent:
        return next(e for e in self.events if (e.direction, e.type) == (direction, kind))


def handshake(
    context: ssl.SSLContext,
    recorder: HandshakeRecorder,
    raw: socket.socket,
    *,
    read: bool = False,
    server_name: str = "localhost",
) -> Outcome:
    """Handshake (and read once) over ``raw``; keep the socket to read its events."""
    raw.settimeout(TIMEOUT)
    start = time.perf_counter()
    tls = context.wrap_socket(raw, server_hostname=server_name, do_handshake_on_connect=False)
    error: Exception | None = None
    version = cipher = None
    try:
        tls.do_handshake()
        version, cipher = tls.version(), tls.cipher()[0]  # type: ignore[index]
        if read:
            tls.recv(64)
    except (ssl.SSLError, OSError) as exc:
        error = exc
    finally:
        events = recorder.events(start, conn=tls)
        recorder.discard(tls)
        tls.close()
    return Outcome(events, error, version, cipher)


def dial(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def greet(tls: socket.socket, stopping: threading.Event) -> None:
    """Server side: say something, so that the client's read returns."""
    tls.sendall(b"hello")
    stopping.wait(2)


@contextlib.contextmanager
def python_server(
    pki: Pki,
    *,
    max_version: ssl.TLSVersion | None = None,
    client_ca: Path | None = None,
    chain: bool = False,
) -> Iterator[TcpServer]:
    cert = pki.server_chain if chain else pki.server_cert
    context = server_context(cert, pki.server_key, max_version=max_version, client_ca=client_ca)
    with TcpServer(tls_handler(context, greet)) as server:
        yield server


@contextlib.contextmanager
def openssl_server(pki: Pki, *options: str) -> Iterator[socket.socket]:
    """``openssl s_server`` for one connection; yields that connection, kills it after."""
    assert OPENSSL is not None
    port = free_port()
    command = [OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1"]
    command += ["-cert", str(pki.server_cert), "-key", str(pki.server_key), *options]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # the first successful connect is the one connection it serves
            try:
                connection = dial(port)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.02)
        with connection:
            yield connection
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)


def recorded(context: ssl.SSLContext) -> HandshakeRecorder:
    recorder = HandshakeRecorder()
    assert recorder.install(context)
    return recorder


# --- message sequences -------------------------------------------------------------------


def test_tls13_handshake_sequence(pki: Pki) -> None:
    context = client_context(pki.ca_file)
    context.set_alpn_protocols(["mqtt"])
    recorder = recorded(context)
    with python_server(pki) as server:
        outcome = handshake(context, recorder, dial(server.port), read=True)
    assert outcome.error is None
    assert outcome.kinds() == [
        ("sent", "ClientHello"),
        ("received", "ServerHello"),
        ("received", "ChangeCipherSpec"),  # RFC 8446 §D.4 compatibility, header only
        ("received", "EncryptedExtensions"),
        ("received", "Certificate"),
        ("received", "CertificateVerify"),
        ("received", "Finished"),
        ("sent", "ChangeCipherSpec"),
        ("sent", "Finished"),
        # Read after the handshake: OpenSSL 3.0 servers send two tickets.
        ("received", "NewSessionTicket"),
        ("received", "NewSessionTicket"),
    ]
    assert {event.version for event in outcome.events} == {"TLSv1.3"}
    hello = outcome.first("sent", "ClientHello").fields
    assert hello["server_name"] == "localhost"
    assert hello["alpn"] == ("mqtt",)
    assert hello["key_share"] is True
    assert "TLSv1.3" in hello["versions"]  # type: ignore[operator]
    server_hello = outcome.first("received", "ServerHello").fields
    assert server_hello["version"] == "TLSv1.3"
    assert server_hello["cipher_suite"] == outcome.cipher  # 1.3 suites: IANA = OpenSSL
    assert server_hello["key_share_group"] == "x25519"
    # The CPython server does not take part in ALPN: nothing chosen.
    assert outcome.first("received", "EncryptedExtensions").fields["alpn"] is None
    certificate = outcome.first("received", "Certificate")
    assert certificate.fields == {"count": 1, "subjects": ("CN=127.0.0.1",), "issuers": (ROOT_CN,)}
    ms = [event.ms for event in outcome.events]
    assert ms == sorted(ms)
    assert 0 <= ms[0] < ms[-1] < TIMEOUT * 1000


def test_tls12_handshake_sequence(pki: Pki) -> None:
    context = client_context(pki.ca_file)
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    recorder = recorded(context)
    with python_server(pki, max_version=ssl.TLSVersion.TLSv1_2) as server:
        outcome = handshake(context, recorder, dial(server.port), read=True)
    assert outcome.error is None
    assert outcome.version == "TLSv1.2"
    assert outcome.kinds() == [
        ("sent", "ClientHello"),
        ("received", "ServerHello"),
        ("received", "Certificate"),
        ("received", "ServerKeyExchange"),
        ("received", "ServerHelloDone"),
        ("sent", "ClientKeyExchange"),
        ("sent", "ChangeCipherSpec"),
        ("sent", "Finished"),
        ("received", "NewSessionTicket"),
        ("received", "ChangeCipherSpec"),
        ("received", "Finished"),
    ]
    # The ClientHello is labelled with the client's maximum; the rest with what was chosen.
    assert [event.version for event in outcome.events[1:]] == ["TLSv1.2"] * 10
    server_hello = outcome.first("received", "ServerHello").fields
    assert server_hello["version"] == "TLSv1.2"
    assert server_hello["cipher_suite"] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    assert outcome.first("received", "ServerKeyExchange").fields["group"] == "x25519"
    assert outcome.first("received", "Certificate").fields["subjects"] == ("CN=127.0.0.1",)


# --- client certificates -------------------------------------------------------------------


@pytest.mark.parametrize("max_version", [None, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_a_python_server_requires_a_certificate_without_naming_cas(
    pki: Pki, max_version: ssl.TLSVersion | None
) -> None:
    context = client_context(pki.ca_file)
    recorder = recorded(context)
    with python_server(pki, max_version=max_version, client_ca=pki.ca_file) as server:
        outcome = handshake(context, recorder, dial(server.port), read=True)
    summary = HandshakeSummary.of(outcome.events)
    assert summary.server_requested_client_certificate()
    request = outcome.first("received", "CertificateRequest")
    assert request.fields["certificate_authorities"] == ()  # CPython sets no CA list
    # The client had none to give: an empty Certificate, then the server's alert.
    assert outcome.first("sent", "Certificate").fields["count"] == 0
    expected = "certificate_required" if max_version is None else "handshake_failure"
    assert summary.received_alert() == ("fatal", expected)
    assert isinstance(outcome.error, ssl.SSLError)


@needs_openssl
@pytest.mark.parametrize("protocol", ["-tls1_3", "-tls1_2"])
def test_certificate_request_lists_the_ca_names_the_server_accepts(pki: Pki, protocol: str) -> None:
    context = client_context(pki.ca_file)
    recorder = recorded(context)
    options = (protocol, "-Verify", "1", "-CAfile", str(pki.ca_file))
    with openssl_server(pki, *options) as connection:
        outcome = handshake(context, recorder, connection, read=True)
    request = outcome.first("received", "CertificateRequest")
    assert request.fields["certificate_authorities"] == (ROOT_CN,)
    assert "ecdsa_secp256r1_sha256" in request.fields["signature_algorithms"]  # type: ignore[operator]
    assert HandshakeSummary.of(outcome.events).server_requested_client_certificate()


@pytest.mark.parametrize("max_version", [None, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_the_alert_of_a_server_that_rejects_the_client_certificate(
    pki: Pki, max_version: ssl.TLSVersion | None
) -> None:
    context = client_context(pki.ca_file, cert=(pki.stranger_cert, pki.stranger_key))
    recorder = recorded(context)
    with python_server(pki, max_version=max_version, client_ca=pki.ca_file) as server:
        outcome = handshake(context, recorder, dial(server.port), read=True)
    if max_version is None:
        # TLS 1.3: the client's handshake completes before the server has looked at
        # the certificate; the alert comes with the first read.
        assert outcome.version == "TLSv1.3"
    else:
        assert outcome.version is None  # TLS 1.2: the handshake itself fails
    assert isinstance(outcome.error, ssl.SSLError)
    assert outcome.error.reason == "TLSV1_ALERT_UNKNOWN_CA"
    summary = HandshakeSummary.of(outcome.events)
    assert summary.received_alert() == ("fatal", "unknown_ca")
    assert summary.sent_alert() is None
    sent = outcome.first("sent", "Certificate").fields
    assert sent["subjects"] == ("CN=stranger",)
    assert sent["issuers"] == ("CN=Some Other CA",)
    assert outcome.events[-1].type == "Alert"


def test_an_accepted_client_certificate_is_traced_too(pki: Pki) -> None:
    context = client_context(pki.ca_file, cert=(pki.client_cert, pki.client_key))
    recorder = recorded(context)
    with python_server(pki, client_ca=pki.ca_file) as server:
        outcome = handshake(context, recorder, dial(server.port), read=True)
    assert outcome.error is None
    assert ("sent", "CertificateVerify") in outcome.kinds()
    assert HandshakeSummary.of(outcome.events).received_alert() is None


# --- verification failures ------------------------------------------------------------------


@pytest.mark.parametrize("max_version", [None, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_the_server_chain_is_recorded_when_verification_fails(
    pki: Pki, max_version: ssl.TLSVersion | None
) -> None:
    context = client_context(pki.other_ca_file)
    recorder = recorded(context)
    with python_server(pki, max_version=max_version, chain=True) as server:
        outcome = handshake(context, recorder, dial(server.port))
    assert isinstance(outcome.error, ssl.SSLCertVerificationError)
    summary = HandshakeSummary.of(outcome.events)
    chain = summary.server_certificates()
    assert len(chain) == 2
    assert chain[1] == pki.root.certificate.public_bytes(serialization.Encoding.DER)
    certificate = outcome.first("received", "Certificate")
    assert certificate.fields["subjects"] == ("CN=127.0.0.1", ROOT_CN)
    assert summary.sent_alert() == ("fatal", "unknown_ca")
    assert outcome.events[-1].type == "Alert"


def test_events_without_conn_cover_a_wrap_socket_that_raised(pki: Pki) -> None:
    """The plain ``wrap_socket`` path: the socket is lost, the records are not."""
    context = client_context(pki.other_ca_file)
    recorder = recorded(context)
    with python_server(pki) as server, dial(server.port) as raw:
        start = time.perf_counter()
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="localhost")
    events = recorder.events(start)
    assert HandshakeSummary.of(events).server_certificates()
    assert [e.type for e in events if e.direction == "received"][-1] == "Certificate"


# --- third-party peer -------------------------------------------------------------------------


@needs_openssl
def test_hello_retry_request_from_a_server_that_wants_another_group(pki: Pki) -> None:
    context = client_context(pki.ca_file)
    recorder = recorded(context)
    with openssl_server(pki, "-tls1_3", "-groups", "secp384r1") as connection:
        outcome = handshake(context, recorder, connection)
    assert outcome.error is None
    assert outcome.kinds()[:6] == [
        ("sent", "ClientHello"),
        ("received", "HelloRetryRequest"),
        ("sent", "ChangeCipherSpec"),
        ("sent", "ClientHello"),
        ("received", "ChangeCipherSpec"),
        ("received", "ServerHello"),
    ]
    hellos = [e for e in outcome.events if e.type == "ClientHello"]
    assert hellos[0].fields["key_share_groups"] == ("x25519",)
    assert hellos[1].fields["key_share_groups"] == ("secp384r1",)
    assert outcome.first("received", "HelloRetryRequest").fields["selected_group"] == "secp384r1"
    assert outcome.first("received", "ServerHello").fields["key_share_group"] == "secp384r1"


@needs_openssl
@pytest.mark.parametrize(
    ("options", "where"),
    [
        (("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"), "ServerHello"),
        (("-tls1_3",), "EncryptedExtensions"),
    ],
)
def test_alpn_choice_and_suite_from_openssl(pki: Pki, options: tuple[str, ...], where: str) -> None:
    context = client_context(pki.ca_file)
    context.set_alpn_protocols(["mqtt", "x-amzn-mqtt-ca"])
    recorder = recorded(context)
    with openssl_server(pki, *options, "-alpn", "mqtt") as connection:
        outcome = handshake(context, recorder, connection)
    assert outcome.error is None
    assert outcome.first("received", where).fields["alpn"] == "mqtt"
    if where == "ServerHello":
        suite = outcome.first("received", "ServerHello").fields["cipher_suite"]
        assert suite == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"


# --- the recorder itself ------------------------------------------------------------------------


def test_the_callback_receives_the_ssl_socket_or_ssl_object(pki: Pki) -> None:
    context = client_context(pki.ca_file)
    recorder = recorded(context)
    with python_server(pki) as server:
        with dial(server.port) as raw:
            tls = context.wrap_socket(raw, server_hostname="localhost")
            with tls:
                assert recorder.records(tls)
        # wrap_bio: the SSLObject is the conn; drive it over a plain socket.
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls_object = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with dial(server.port) as raw:
            for _ in range(20):  # a handshake takes two round trips; bounded anyway
                try:
                    tls_object.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    incoming.write(raw.recv(65536))
            raw.sendall(outgoing.read())
    assert tls_object.version() == "TLSv1.3"
    events = recorder.events(time.perf_counter(), conn=tls_object)
    assert [e.type for e in events][:2] == ["ClientHello", "ServerHello"]


def test_one_shared_context_traces_concurrent_connections_apart(pki: Pki) -> None:
    context = client_context(None)  # names differ per connection: no hostname check
    recorder = recorded(context)
    outcomes: dict[int, Outcome] = {}

    def connect(index: int, port: int) -> None:
        name = f"target-{index}.example"
        outcomes[index] = handshake(context, recorder, dial(port), read=True, server_name=name)

    with python_server(pki) as server:
        workers = [threading.Thread(target=connect, args=(i, server.port)) for i in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(TIMEOUT * 2)
    assert sorted(outcomes) == list(range(8))
    for index, outcome in outcomes.items():
        assert outcome.error is None
        hellos = [e for e in outcome.events if e.type == "ClientHello"]
        assert [hello.fields["server_name"] for hello in hellos] == [f"target-{index}.example"]
        assert len(outcome.events) == 11
    assert recorder.records() == []  # each was discarded after reading


def test_a_raising_callback_fails_a_good_handshake_but_ours_never_raises(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPython keeps the callback's exception and raises it after the handshake."""

    def explode(*args: object) -> None:
        raise ValueError("from the callback")

    context = client_context(pki.ca_file)
    context._msg_callback = explode  # type: ignore[attr-defined]
    with python_server(pki) as server, dial(server.port) as raw:
        tls = context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        with tls:
            with pytest.raises(ValueError, match="from the callback"):
                tls.do_handshake()
            assert tls.version() == "TLSv1.3"  # the handshake ran to its end regardless

    context = client_context(pki.ca_file)
    recorder = recorded(context)

    def broken_store(*args: object) -> None:
        raise RuntimeError("a bug in the recorder")

    monkeypatch.setattr(recorder, "_store", broken_store)
    with python_server(pki) as server:
        outcome = handshake(context, recorder, dial(server.port))
    assert outcome.error is None
    assert recorder.failures > 0


def test_bytes_kept_are_bounded_and_drops_counted(pki: Pki) -> None:
    context = client_context(pki.ca_file)
    recorder = HandshakeRecorder(max_bytes=1500)
    assert recorder.install(context)
    with python_server(pki) as server:
        outcome = handshake(context, recorder, dial(server.port))
    assert outcome.error is None
    assert recorder.dropped_records > 0
    assert recorder.dropped_bytes > 0
    # What was kept still decodes: at least the ClientHello.
    assert outcome.events[0].type == "ClientHello"


def test_install_refuses_a_foreign_callback_and_uninstall_leaves_it(pki: Pki) -> None:
    def foreign(*args: object) -> None:
        del args

    context = client_context(pki.ca_file)
    context._msg_callback = foreign  # type: ignore[attr-defined]
    recorder = HandshakeRecorder()
    assert not recorder.install(context)
    recorder.uninstall(context)
    assert context._msg_callback is foreign  # type: ignore[attr-defined]

    other = client_context(pki.ca_file)
    assert recorder.install(other)
    assert recorder.install(other)  # again: still ours
    recorder.uninstall(other)
    assert other._msg_callback is None  # type: ignore[attr-defined]


def test_without_the_hook_install_fails_and_nothing_is_recorded(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The hook lives on the C base class too, which cannot be patched: simulate a
    # Python without it where the adapter asks.
    monkeypatch.setattr(tls_trace, "trace_available", lambda: False)
    context = client_context(pki.ca_file)
    recorder = HandshakeRecorder()
    assert not recorder.install(context)
    with python_server(pki) as server:
        outcome = handshake(context, recorder, dial(server.port))
    assert outcome.error is None
    assert outcome.events == []


class _Conn:
    """A stand-in for the callback's conn argument (weak-referenceable)."""


def _feed(recorder: HandshakeRecorder, conn: object, data: bytes = b"\x0e\x00\x00\x00") -> None:
    recorder._on_message(conn, "read", 0x0303, 22, 14, data)


def test_streams_are_evicted_oldest_first_and_id_reuse_starts_afresh() -> None:
    recorder = HandshakeRecorder(max_connections=2)
    first, second, third = _Conn(), _Conn(), _Conn()
    for conn in (first, second, third):
        _feed(recorder, conn)
    assert recorder.records(first) == []
    assert len(recorder.records(second)) == len(recorder.records(third)) == 1
    assert recorder.dropped_records == 1

    recorder = HandshakeRecorder()
    _feed(recorder, None)  # debughelpers.c passes None once the owner is gone
    assert [e.type for e in recorder.events(0.0)] == ["ServerHelloDone"]
    recorder.clear()
    assert recorder.records() == []


def test_discard_frees_the_budget() -> None:
    recorder = HandshakeRecorder(max_bytes=1000)
    conn = _Conn()
    for _ in range(30):
        _feed(recorder, conn, b"\x0e\x00\x00\x00" + bytes(60))
    assert recorder.dropped_records > 0
    kept = len(recorder.records(conn))
    recorder.discard(conn)
    fresh = _Conn()
    for _ in range(kept):
        _feed(recorder, fresh, b"\x0e\x00\x00\x00" + bytes(60))
    assert len(recorder.records(fresh)) == kept
