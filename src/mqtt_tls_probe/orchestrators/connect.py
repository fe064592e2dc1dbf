"""``run_probe``: the stages of ``probe connect`` in order, each timed.

Rules:
- the first failing stage ends the run and every later stage is reported as
  skipped. A failure is data in the report (``ErrorInfo``), never an
  exception out of ``run_probe``; only bugs escape;
- a failure belongs to the stage that was running: its row fails, the
  report's ``error.stage`` names it and the exit code is that stage's, whatever
  the kind (a TLS alert that arrives during the round trip fails the round trip);
- each stage has ``--timeout`` seconds in all (``self.deadline``): every wait
  inside it, retries included, ends by then;
- one ``ExitStack`` owns every socket and session a run opens, so each is
  closed whatever happens.

A scan (and ``--repeat``) passes two more things: the ``SharedTrust`` its probes
have in common (read and built once), and an ``AbortHandle``, the target's
deadline: each stage then gets at most the time left, every socket is
registered with the handle so that the scanner can cut it from its own
thread, and a stage the deadline cut fails as such (``core.deadline``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mqtt_tls_probe.adapters import net, tls
from mqtt_tls_probe.adapters.mqtt import MqttSession, default_topic, open_session, refusal
from mqtt_tls_probe.adapters.tls_observer import HandshakeObserver
from mqtt_tls_probe.adapters.trust import LightBundle, load_ca_file_light, load_trust
from mqtt_tls_probe.config import MqttOptions, ProbeConfig
from mqtt_tls_probe.core import light_verify
from mqtt_tls_probe.core.cert_findings import trusted_ca_finding
from mqtt_tls_probe.core.classify import Connack
from mqtt_tls_probe.core.lightcert import LightCert
from mqtt_tls_probe.errors import ErrorInfo, ErrorKind, ProbeError, Stage
from mqtt_tls_probe.model import (
    CertInfo,
    Described,
    Finding,
    FindingCode,
    ForwardInfo,
    MqttInfo,
    ProbeReport,
    RoundtripInfo,
    SatClaims,
    StageResult,
    Target,
    TlsInfo,
    TrustBundle,
    TrustInfo,
    TrustSource,
    Unparseable,
)

if TYPE_CHECKING:  # connect's cold start is measured: only a scan loads these
    from cryptography import x509

    from mqtt_tls_probe.adapters.abort import AbortHandle
    from mqtt_tls_probe.core import certinfo
    from mqtt_tls_probe.core.tls_messages import TraceEvent
    from mqtt_tls_probe.orchestrators.shared_trust import SharedTrust

# How long to wait after a TLS 1.3 handshake for the server's verdict on the
# client, in round trips measured by the TCP connect, and its floor in seconds.
_VERDICT_ROUND_TRIPS = 4
_VERDICT_FLOOR = 0.05


def run_probe(
    config: ProbeConfig,
    now: datetime | None = None,
    *,
    shared: SharedTrust | None = None,
    abort: AbortHandle | None = None,
) -> ProbeReport:
    """Probe one broker; ``now`` (default: the clock) dates every certificate check.

    ``shared``: the trust prepared once for many probes (default: read it now).
    ``abort``: the target's deadline, which another thread may enforce.
    """
    return _Probe(config, now or datetime.now(UTC), shared, abort).run()


class _Probe:
    """One run: a method per stage, each returning its detail line or raising ProbeError."""

    def __init__(
        self,
        config: ProbeConfig,
        now: datetime,
        shared: SharedTrust | None = None,
        abort: AbortHandle | None = None,
    ) -> None:
        self.config = config
        self.now = now
        self.resources = contextlib.ExitStack()
        self.results: list[StageResult] = []
        self.error: ErrorInfo | None = None
        self.warnings: list[Finding] = []
        # The trust anchors, as cryptography reads them; None while only the light reader
        # has read them (``self.light``): the ``bundle`` property reads them on demand.
        self._bundle: TrustBundle | None = TrustBundle(TrustSource.NONE, "", ())
        self.light: LightBundle | None = None
        self.sent_light: list[LightCert] | None = None  # the chain as sent, on the light path
        self.addresses: list[net.Address] = []
        self.address: net.Address | None = None
        self.tcp_seconds = 0.0
        self.tcp_socket: socket.socket | None = None
        self.tls_socket: ssl.SSLSocket | None = None
        self.context: ssl.SSLContext | None = None
        self.rejection: tls.CertificateRejected | None = None
        self.observer: HandshakeObserver | None = None
        self.trace: tuple[TraceEvent, ...] | None = None  # --trace: the tls stage's messages
        self.tls_info: TlsInfo | None = None
        self.chain: list[certinfo.Loaded] = []  # as sent, each read in full or not
        self.mqtt_info: MqttInfo | None = None
        self.roundtrip_info: RoundtripInfo | None = None
        self.sat_claims: SatClaims | None = None
        self.session: MqttSession | None = None
        self.forward: ForwardInfo | None = None
        self.deadline = 0.0  # time.monotonic() by which the running stage must end
        self.shared = shared
        self.abort = abort
        self.stage_timeout = config.timeout  # --timeout, before a deadline shortens it

    @property
    def bundle(self) -> TrustBundle:
        if self._bundle is None:  # read by the light reader so far: a report asks for more
            assert self.light is not None  # noqa: S101 (narrowing)
            self._bundle = _full_bundle(self.light)
        return self._bundle

    # --- orchestration ------------------------------------------------------

    def run(self) -> ProbeReport:
        stages: list[tuple[Stage, Callable[[], str]]] = [
            (Stage.TRUST, self.trust),
            (Stage.RESOLVE, self.resolve),
            (Stage.TCP, self.tcp),
            (Stage.TLS, self.handshake),
            (Stage.VERIFY, self.verify_chain),
            (Stage.MQTT, self.mqtt),
        ]
        if self.config.roundtrip:
            stages.append((Stage.ROUNDTRIP, self.roundtrip))
        with self.resources:
            if self.abort is not None:
                self.resources.callback(self.abort.release)
            for name, step in stages:
                if self.config.plain and name in (Stage.TLS, Stage.VERIFY):
                    self._skip_for_plain(name)
                    continue
                self._run_stage(name, self._within_deadline(name, step))
        return self._report()

    def _skip_for_plain(self, name: Stage) -> None:
        """A port without TLS: the tls and verify stages are skipped, saying why."""
        if self.error is not None:
            self._run_stage(name, lambda: "")  # recorded as skipped after the failure
            return
        detail = "skipped: the port does not use TLS (plain MQTT)"
        self.results.append(StageResult(name, ok=False, skipped=True, ms=None, detail=detail))

    def _within_deadline(self, name: Stage, step: Callable[[], str]) -> Callable[[], str]:
        """Under a target deadline: at most the time left for the stage, and blame it.

        Whatever a stage raises once the deadline has cut its connections is
        the deadline's doing, reported as such.
        """
        abort = self.abort
        if abort is None:
            return step
        from mqtt_tls_probe.core.deadline import deadline_error

        def bounded() -> str:
            left = abort.remaining()
            if left <= 0:
                raise ProbeError.from_info(deadline_error(name, abort.seconds))
            self.config = self.config._replace(timeout=min(self.stage_timeout, left))
            self.deadline = time.monotonic() + self.config.timeout  # the stage's, shortened
            try:
                return step()
            except (ProbeError, OSError) as exc:  # a bug stays a bug (exit 1)
                if abort.expired():
                    raise ProbeError.from_info(deadline_error(name, abort.seconds)) from exc
                raise

        return bounded

    def _run_stage(self, name: Stage, step: Callable[[], str]) -> None:
        if self.error is not None:
            self.results.append(
                StageResult(name, ok=False, skipped=True, ms=None, detail="skipped")
            )
            return
        started = time.perf_counter()
        self.deadline = time.monotonic() + self.config.timeout
        try:
            detail = step()
        except ProbeError as exc:
            ms = (time.perf_counter() - started) * 1000
            self.error = exc.info._replace(stage=name)
            self.results.append(StageResult(name, ok=False, skipped=False, ms=ms, detail=exc.kind))
            return
        ms = (time.perf_counter() - started) * 1000
        self.results.append(StageResult(name, ok=True, skipped=False, ms=ms, detail=detail))

    def _report(self) -> ProbeReport:
        c = self.config
        if self.shared is not None:
            trust = self.shared.described  # described once for all the probes
            chain: Sequence[CertInfo] = self.shared.memo.describe_all(self.chain, self.now)
        else:  # described when a renderer reads them: a text success never does
            trust = TrustInfo(*self._trust_origin(), Described(self._anchors_describer()))
            chain = Described(_chain_describer(self.sent_light, self.chain, self.now))
        tls_info = self.tls_info
        if c.trace and self.observer is not None and self.observer.available:
            self.trace = tuple(self.observer.events())
        if self.trace is not None:
            tls_info = (tls_info or TlsInfo(None, None, None))._replace(trace=self.trace)
        return ProbeReport(
            target=Target(c.host, c.port, c.server_name),
            verified=not c.trust.insecure and not c.plain,
            trust=trust,
            stages=tuple(self.results),
            tls=tls_info,
            chain=chain,
            mqtt=self.mqtt_info,
            roundtrip=self.roundtrip_info,
            error=self.error,
            warnings=tuple(self.warnings),
            forward=self.forward,
            listener=c.listener,
        )

    def _trust_origin(self) -> tuple[TrustSource, str]:
        if self.light is not None:
            return TrustSource.FILE, self.light.location
        return self.bundle.source, self.bundle.location

    def _anchors_describer(self) -> Callable[[], tuple[CertInfo, ...]]:
        """What describes the trust anchors later, holding their data, not this run."""
        now, light, bundle = self.now, self.light, self._bundle
        if bundle is not None:
            return lambda: _describe(bundle.certificates, now, as_trust_anchor=True)
        assert light is not None  # noqa: S101 (narrowing: no bundle yet means the light path)
        return lambda: tuple(
            light_verify.describe(anchor, now, as_trust_anchor=True) for anchor in light.anchors
        )

    def _remaining(self) -> float:
        """Seconds left to the running stage (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def _left_for_messages(self) -> float:
        """``_remaining`` to the hundredth (it shows in "within 0.73 s"), at least 10 ms."""
        return max(0.01, round(self._remaining(), 2))

    def _own_socket(self, sock: socket.socket) -> None:
        """Close ``sock`` when the run ends (closing twice is harmless)."""
        self.resources.callback(sock.close)

    def _on_open(self) -> Callable[[socket.socket], None] | None:
        """Where a new socket is registered, so that the target's deadline can cut it."""
        return self.abort.register if self.abort is not None else None

    def _load_trust(self) -> TrustBundle:
        shared = self.shared
        if shared is None:
            return load_trust(self.config.trust, self.config.timeout)
        if shared.error is not None:
            raise ProbeError.from_info(shared.error)
        return shared.bundle

    # --- stages ---------------------------------------------------------------

    def trust(self) -> str:
        """The trust anchor; with ``--sat-serviceaccount``, the minted token too."""
        detail = self._trust_anchor()
        request = self.config.mqtt.sat_request
        if request is not None and not self.config.plain:  # no token for a clear-text port
            from mqtt_tls_probe.adapters.token_request import EXPIRATION_SECONDS, mint_token

            token = mint_token(self.config.trust.cluster, request, self.config.timeout)
            mqtt = self.config.mqtt._replace(sat_token=token)
            self.config = self.config._replace(mqtt=mqtt)
            detail += (
                f"; K8S-SAT minted for {request.namespace}/{request.name} "
                f"(audience {request.audience}, {EXPIRATION_SECONDS} s)"
            )
        return detail

    def _trust_anchor(self) -> str:
        if self.config.plain:
            self.warnings.append(
                Finding(
                    FindingCode.NO_TLS,
                    f"Port {self.config.port} does not use TLS: credentials and messages cross "
                    "the network in clear text; probed with a plain MQTT CONNECT.",
                )
            )
            return "not needed: the port does not use TLS"
        light_file = self._light_ca_file()
        if light_file is not None:
            loaded = load_ca_file_light(light_file, self.config.timeout)
            if isinstance(loaded, LightBundle):
                self.light, self._bundle = loaded, None
                self.warnings.extend(light_verify.anchor_warnings(loaded.anchors, self.now))
                names = [light_verify.display_name(a) for a in loaded.anchors]
                return _trust_detail(names, loaded.location, "")
            self._bundle = loaded
        else:
            self._bundle = self._load_trust()
        from mqtt_tls_probe.core import certinfo

        certs = self.bundle.certificates
        if self.bundle.source is TrustSource.NONE:
            return "none: --insecure, the server's certificate is not verified"
        anchor_findings = self.shared.memo if self.shared else certinfo
        for cert in certs:
            for finding in anchor_findings.certificate_findings(
                cert, self.now, as_trust_anchor=True
            ):
                reported = trusted_ca_finding(finding, _cn(cert))
                if reported is not None:
                    self.warnings.append(reported)
        note = f", {self.bundle.note}" if self.bundle.note else ""
        skipped = self.bundle.unparseable
        for item in skipped:
            what = f"a certificate of {self.bundle.location}"
            consequence = "it is skipped, and the other CAs are used"
            self.warnings.append(certinfo.unparseable_finding(item, what, consequence))
        if skipped:
            note += f", {len(skipped)} skipped (cryptography cannot parse them)"
        return _trust_detail([_cn(c) for c in certs], self.bundle.location, note)

    def _light_ca_file(self) -> Path | None:
        """The CA file the light reader may read: connect alone, verifying, with --ca-file."""
        trust = self.config.trust
        return trust.ca_file if self.shared is None and not trust.insecure else None

    def resolve(self) -> str:
        c = self.config
        if c.port_forward is not None:
            f = c.port_forward
            return f"not resolved here: port-forward to the Service {f.namespace}/{f.service}"
        self.addresses = net.resolve(c.host, c.port, c.timeout)
        ips = ", ".join(dict.fromkeys(a.ip for a in self.addresses))
        return ips if net.is_ip_literal(c.host) else f"{c.host} -> {ips}"

    def tcp(self) -> str:
        if self.config.port_forward is not None:
            return self._tcp_forward()  # a cluster read failing there fails this stage
        started = time.perf_counter()
        self.tcp_socket, self.address = net.connect(
            self.addresses, self.config.timeout, self._on_open()
        )
        self._own_socket(self.tcp_socket)
        self.tcp_seconds = time.perf_counter() - started
        return f"connected to {self.address}"

    def _tcp_forward(self) -> str:
        """The pod behind the Service, a loopback listener forwarding to it, and a connection."""
        from mqtt_tls_probe.adapters.cluster import ClusterClient
        from mqtt_tls_probe.adapters.port_forward import Forwarder, find_pod

        c = self.config
        request = c.port_forward
        assert request is not None  # noqa: S101 (narrowing)
        deadline = self.deadline
        client = ClusterClient(c.trust.cluster, self._left_for_messages(), one_deadline=True)
        self.resources.callback(client.close)
        pod = find_pod(client, request.namespace, request.service, c.port)
        forwarder = Forwarder(client, pod)
        self.resources.callback(forwarder.close)
        self.address = net.Address(socket.AF_INET, ("127.0.0.1", forwarder.port))
        self.addresses = [self.address]
        started = time.perf_counter()
        sock, _ = net.connect(
            self.addresses, max(deadline - time.monotonic(), 0.01), self._on_open()
        )
        self._own_socket(sock)
        stream = forwarder.wait_open(sock.getsockname()[1], deadline)
        self.tcp_seconds = time.perf_counter() - started
        forwarder.settle(stream, deadline)
        self.tcp_socket = sock
        self.forward = ForwardInfo(pod.namespace, pod.pod, pod.port)
        return (
            f"connected to pod {pod.namespace}/{pod.pod} port {pod.port} via port-forward "
            f"(127.0.0.1:{forwarder.port})"
        )

    def handshake(self) -> str:
        c = self.config
        verifying = not c.trust.insecure
        if self.shared is not None and self.shared.context is not None:
            context = self.shared.context  # a scan's: no per-probe recorder on it
        else:
            if self.light is not None:  # re-encoded, as to_pem does on the other path
                pem = "".join(ssl.DER_cert_to_PEM_cert(a.der) for a in self.light.anchors)
            else:
                from mqtt_tls_probe.core.certinfo import to_pem

                pem = to_pem(self.bundle.certificates).decode("ascii")
            context = tls.build_context(pem or None, c.tls, verify=verifying)
            self._watch_handshake(context)
        self.context = context
        observer = self.observer
        sock, self.tcp_socket = self.tcp_socket, None
        assert sock is not None  # noqa: S101 (narrowing)
        try:
            self.tls_socket = tls.handshake(sock, context, c.tls, c.timeout, observer=observer)
        except tls.CertificateRejected as exc:
            self.rejection = exc
            self._end_trace()
            return "handshake stopped at the server's certificate (see verify)"
        except ProbeError as exc:
            self._end_trace()
            raise self._maybe_not_tls(exc) from exc
        self._own_socket(self.tls_socket)
        verdict = max(_VERDICT_FLOOR, _VERDICT_ROUND_TRIPS * self.tcp_seconds)
        window = min(self._remaining(), verdict)
        try:
            tls.await_server_verdict(self.tls_socket, c.tls, window, observer=observer)
        finally:
            self._end_trace()  # the trace ends with the tls stage: what it read is in
        self.tls_info = tls.session_info(self.tls_socket)
        detail = f"{self.tls_info.version} {self.tls_info.cipher}"
        if self.tls_info.alpn:
            detail += f", ALPN {self.tls_info.alpn}"
        if c.tls.client:
            detail += f", client certificate {c.tls.client.subject}"
        return detail

    def _watch_handshake(self, context: ssl.SSLContext) -> None:
        """Record the handshake (classification reads it; --trace shows it)."""
        c = self.config
        self.observer = HandshakeObserver(
            context, server_name=c.server_name, address=self.address, timeout=c.timeout
        )
        if c.trace and not self.observer.available:
            self.warnings.append(
                Finding(
                    FindingCode.TRACE_UNAVAILABLE,
                    "--trace: trace unavailable on this Python (ssl.SSLContext has no "
                    "_msg_callback): the handshake's messages are not shown.",
                )
            )
        if c.tls.keylog is not None:
            self.warnings.append(
                Finding(
                    FindingCode.TLS_KEYLOG,
                    f"The TLS secrets of this session are in {c.tls.keylog} (--tls-keylog): "
                    "anyone with that file can decrypt the captured traffic, MQTT "
                    "credentials and tokens included. Delete it after use.",
                )
            )
        self.observer.begin()

    def _end_trace(self) -> None:
        if self.observer is not None:  # none on a context shared by a scan's probes
            self.observer.stop()  # decoded for --trace when the report is made, off the clock

    def _maybe_not_tls(self, error: ProbeError) -> ProbeError:
        """A closed or non-TLS answer: look at what the port says in cleartext."""
        if error.kind not in (ErrorKind.PEER_CLOSED, ErrorKind.NOT_TLS) or self.address is None:
            return error
        if self._remaining() <= 0 or (self.abort is not None and self.abort.expired()):
            return error  # no time left for a second look
        seen = tls.sniff_cleartext(self.address, min(self._remaining(), 2.0))
        if seen is None:
            return error
        return ProbeError(
            ErrorKind.NOT_TLS,
            f"{self.address} does not speak TLS: {seen}.",
            error.hint if error.kind is ErrorKind.NOT_TLS else None,
        )

    def verify_chain(self) -> str:
        if self.light is not None and self.rejection is None:
            detail = self._verify_light()
            if detail is not None:
                return detail
        from mqtt_tls_probe.core import verify

        c = self.config
        anchors = self.bundle.certificates
        if self.rejection is not None:
            self._read_rejected_chain()
            raise ProbeError.from_info(
                verify.explain_rejection(
                    self._checkable(),
                    anchors,
                    c.server_name,
                    self.now,
                    verify_code=self.rejection.verify_code,
                    verify_message=self.rejection.verify_message,
                )
            )
        assert self.tls_socket is not None  # noqa: S101 (narrowing)
        if self.shared is not None:  # a fleet sends few chains: each read in full once
            sent = tls.sent_chain_der(self.tls_socket)
            self.chain = [self.shared.memo.load_der(der) for der in sent]
        else:
            self.chain = tls.peer_chain(self.tls_socket)
        self._note_unparseable()
        chain = self._checkable()
        findings = self.shared.memo.findings if self.shared else verify.findings
        self.warnings.extend(findings(chain, anchors, c.server_name, self.now))
        if c.trust.insecure:
            return self._unverified_detail()
        leaf = chain[0] if chain else None
        paths = self.shared.memo if self.shared else verify
        top = paths.build_path(chain, anchors).anchor if chain else None
        by = f", issued under {_cn(top)}" if top is not None and top is not leaf else ""
        return f"chain of {len(self.chain)} trusted for {c.server_name}{by}"

    def _verify_light(self) -> str | None:
        """A verified chain's findings from the light reader; None: cryptography must tell."""
        assert self.tls_socket is not None  # noqa: S101 (narrowing)
        assert self.light is not None  # noqa: S101 (narrowing)
        c = self.config
        verdict = light_verify.verify_chain(
            tls.sent_chain_der(self.tls_socket),
            tls.verified_chain_der(self.tls_socket),
            self.light.anchors,
            c.server_name,
            self.now,
        )
        if verdict is None:
            return None
        self.sent_light = list(verdict.sent)
        self.warnings.extend(verdict.warnings)
        by = light_verify.display_name(verdict.anchor)
        issued = f", issued under {by}" if verdict.issued_by_anchor else ""
        return f"chain of {len(verdict.sent)} trusted for {c.server_name}{issued}"

    def _read_rejected_chain(self) -> None:
        """The chain OpenSSL rejected: from the trace's Certificate message, else re-fetched.

        The second, unverified handshake (``fetch_chain``) is the fallback for a Python
        without the message callback, or a trace that lost the message.
        """
        from mqtt_tls_probe.core import certinfo

        c = self.config
        sent = self.observer.server_chain() if self.observer is not None else []
        if sent and self.observer is not None:
            self.chain = [certinfo.load_der(der) for der in sent]
            self.tls_info = self.observer.session_info()
        elif self.address is not None:
            fetched = tls.fetch_chain(self.address, c.tls, self._remaining())
            if fetched is not None:
                self.chain, self.tls_info = fetched
        self._note_unparseable()

    def _checkable(self) -> list[x509.Certificate]:
        """The chain for the checks of ``core.verify``: all of it, or nothing.

        A certificate cryptography cannot read would leave a gap the checks
        would misread (a missing intermediate, another leaf); OpenSSL's verdict
        and words then stand alone.
        """
        from mqtt_tls_probe.core import certinfo

        return [] if certinfo.unparseable(self.chain) else certinfo.usable(self.chain)

    def _note_unparseable(self) -> None:
        from mqtt_tls_probe.core import certinfo

        for index, item in enumerate(self.chain):
            if not isinstance(item, Unparseable):
                continue
            what = f"certificate {index} of the server's chain (0 is the server's own)"
            consequence = "OpenSSL's verdict stands, and the chain is not checked further"
            self.warnings.append(certinfo.unparseable_finding(item, what, consequence))

    def _unverified_detail(self) -> str:
        """Under --insecure: what verification would have said, as a warning."""
        from mqtt_tls_probe.core import verify

        if not self.chain:
            return "UNVERIFIED (--insecure): the server sent no certificate"
        chain = self._checkable()
        if not chain:
            return "UNVERIFIED (--insecure): cryptography cannot parse the chain to check it"
        anchors = self.bundle.certificates or None  # None: no CA given, trust unknown
        problem = verify.find_problem(chain, anchors, self.config.server_name, self.now)
        if problem is None:
            checked = "trust, validity and name" if anchors else "validity and name (no CA given)"
            return f"UNVERIFIED (--insecure): the chain passes the checks of {checked}"
        self.warnings.append(
            Finding(
                FindingCode.UNVERIFIED,
                f"UNVERIFIED: verification would fail with {problem.kind}: {problem.message}",
            )
        )
        return f"UNVERIFIED (--insecure): verification would fail with {problem.kind}"

    def _reconnect(self) -> socket.socket:
        """TCP and the verifying handshake again, for the MQTT 3.1.1 retry."""
        c = self.config
        if self._remaining() <= 0:
            raise ProbeError(
                ErrorKind.NO_CONNACK,
                f"The {c.timeout:g} s of the mqtt stage ran out before the MQTT 3.1.1 retry.",
                "Raise --timeout, or try --mqtt-version 3.1.1 directly.",
            )
        addresses = [self.address] if self.address else self.addresses
        sock, _ = net.connect(addresses, self._left_for_messages(), self._on_open())
        self._own_socket(sock)
        if c.plain:
            return sock
        assert self.context is not None  # noqa: S101 (narrowing)
        try:
            tls_socket = tls.handshake(sock, self.context, c.tls, self._left_for_messages())
        except tls.CertificateRejected as exc:
            raise ProbeError(
                ErrorKind.CONNECTION_DROPPED, f"The second TLS handshake failed: {exc}."
            ) from exc
        self._own_socket(tls_socket)
        return tls_socket

    def mqtt(self) -> str:
        c = self.config
        options = _withheld_on_plain(c.mqtt) if c.plain else c.mqtt
        if options is not c.mqtt:
            self.warnings.append(
                Finding(
                    FindingCode.NO_TLS,
                    "The credentials given (user name and password, or token) were not sent: "
                    "the port does not use TLS, and they would cross the network in clear text.",
                )
            )
        if options.sat_token is not None:
            from mqtt_tls_probe.core import sat

            self.sat_claims = sat.decode_claims(options.sat_token)
            self.warnings.extend(sat.claim_findings(self.sat_claims, self.now))
        sock: socket.socket | None
        if c.plain:
            sock, self.tcp_socket = self.tcp_socket, None
        else:
            sock, self.tls_socket = self.tls_socket, None
        assert sock is not None  # noqa: S101 (narrowing)
        outcome = open_session(
            sock,
            self._reconnect,
            options=options,
            tls_options=c.tls,
            port=c.port,
            deadline=self.deadline,
            timeout=c.timeout,
            allow_fallback=c.version_fallback,
        )
        self.session = outcome.session
        self.resources.callback(self._close_session)
        self._record_mqtt(outcome.connack, fallback=outcome.fell_back)
        failure = refusal(outcome, options)
        if failure is not None and c.credential_hint is not None:
            raise ProbeError(failure.kind, failure.message, c.credential_hint)
        if failure is not None:
            raise failure
        connack = outcome.connack
        detail = f"MQTT {connack.version} accepted (CONNACK {connack.code_text()})"
        if outcome.refused_v5 is not None:
            refused = outcome.refused_v5.code_text()
            detail = f"MQTT 5 refused ({refused}); retried with 3.1.1: accepted"
        elif outcome.dropped_v5:
            detail = (
                "the broker closed the connection on MQTT 5 CONNECT; retried with 3.1.1: accepted"
            )
        if options.sat_token is not None:
            detail += f", K8S-SAT authenticated ({self.session.auth_exchanges} AUTH exchange(s))"
        return detail

    def _close_session(self) -> None:
        if self.session is not None:
            self.session.close()

    def _record_mqtt(self, connack: Connack, *, fallback: bool) -> None:
        self.mqtt_info = MqttInfo(
            version=connack.version,
            reason_code=connack.code,
            reason=connack.reason,
            fallback_from="5" if fallback else None,
            properties=connack.properties,
            sat=self.sat_claims,
        )

    def roundtrip(self) -> str:
        c = self.config
        assert self.session is not None  # noqa: S101 (narrowing)
        topic = c.topic or default_topic(c.mqtt.client_id)
        self.roundtrip_info = self.session.roundtrip(topic, self.deadline, c.timeout)
        r = self.roundtrip_info
        return (
            f"{topic}: SUBACK {r.subscribe_ms:.1f} ms, PUBACK {r.publish_ms:.1f} ms, "
            f"message back {r.receive_ms:.1f} ms after PUBLISH"
        )


def _full_bundle(light: LightBundle) -> TrustBundle:
    """The CA file the light reader read, read again by cryptography (for its descriptions)."""
    from mqtt_tls_probe.core.trust_bundle import read_bundle

    return read_bundle(TrustSource.FILE, light.location, light.data)


def _chain_describer(
    sent_light: list[LightCert] | None, chain: list[certinfo.Loaded], now: datetime
) -> Callable[[], tuple[CertInfo, ...]]:
    """What describes the chain as sent later: from the light facts on the light path."""
    if sent_light is None:
        return lambda: _describe(chain, now)
    return lambda: tuple(light_verify.describe(cert, now) for cert in sent_light)


def _describe(
    certs: Iterable[certinfo.Loaded], now: datetime, *, as_trust_anchor: bool = False
) -> tuple[CertInfo, ...]:
    from mqtt_tls_probe.core import certinfo  # cryptography: only when the report is read

    return certinfo.describe_all(certs, now, as_trust_anchor=as_trust_anchor)


def _trust_detail(names: Sequence[str], location: str, note: str) -> str:
    plural = "s" if len(names) > 1 else ""
    return f"{len(names)} CA{plural} from {location}{note}: {'; '.join(names)}"


def _cn(cert: x509.Certificate) -> str:
    from mqtt_tls_probe.core import certinfo

    return certinfo.common_name(cert.subject) or certinfo.name_of(cert.subject)


def _withheld_on_plain(options: MqttOptions) -> MqttOptions:
    """``options`` without credentials: nothing secret crosses a connection without TLS."""
    if options.username is None and options.password is None and options.sat_token is None:
        return options
    return options._replace(username=None, password=None, sat_token=None)
