"""The ``mqtt`` and ``roundtrip`` stages, with paho-mqtt as the protocol engine.

paho dials its own sockets, but the probe has already connected and verified
one: that is what lets it time resolve, tcp and tls apart, and never send a
password or token over a connection it has not verified. ``_PahoOnSocket`` is
the seam. It hands paho that socket behind a ``_WireGuard``, checks every
packet the broker sends before paho handles it (``core.mqtt_wire``), keeps
each CONNACK as the broker sent it (paho rewrites MQTT 3.1.1 return codes as
v5 reason codes), and answers AUTH packets, which paho 2.x does not handle.
``release`` closes what paho's ``loop()`` opens, which paho leaves to garbage
collection.

Those overrides lean on paho internals, read in paho-mqtt 2.2.0
(https://github.com/eclipse-paho/paho.mqtt.python/blob/v2.2.0/src/paho/mqtt/client.py);
``pyproject.toml`` pins paho to the 2.1-2.2 series accordingly, and the tests
against amqtt, mosquitto and the suite's own MQTT 5 and hostile servers cover
each of them:

- ``Client._create_socket`` (client.py line 4560): the one place paho opens a
  connection, called from ``connect()``/``reconnect()``; what it returns needs
  only ``SocketLike``'s methods (line 87) and ``pending`` (``_loop``, line
  1627), as paho's own ``_WebsocketWrapper`` shows;
- ``Client._packet_read`` (line 3058): reads a fixed header one byte at a
  time, then the body; ``BlockingIOError`` from ``recv`` means "nothing now",
  any other ``OSError`` a lost connection (the socket is closed at once);
- ``Client._in_packet`` (line 3155): the packet being handled, ``packet`` its
  body after the fixed header, ``command`` its first byte;
- ``Client._packet_handle`` (line 3802), which dispatches every packet (a
  CONNACK to ``_handle_connack``, line 3849, which calls ``on_connect`` with
  what it decoded) and answers AUTH (0xF0) with ``MQTT_ERR_PROTOCOL``;
  ``MalformedPacket`` from paho's decoders is caught in ``_packet_read``;
- ``Client._out_packet`` (line 801): the packets queued to be sent;
- ``_pack_remaining_length`` (line 3356) and ``_packet_queue`` (line 3764) to
  send the AUTH answer the way paho sends every packet;
- ``_reset_sockets`` (line 1126) to close the socket and the wake-up pair;
- ``_loop`` (line 1627), the body of ``loop()`` without the wake-up pair,
  which ``loop()`` creates first (line 1621).

Rules:
- every wait ends at the stage's deadline (a monotonic instant the
  orchestrator gives), whatever the broker sends: the guard stops paho's
  reads at the deadline, so a flood cannot keep one ``loop()`` call going;
- no packet over ``MAX_PACKET_SIZE`` is read (the guard refuses it at its
  header), no QoS 2 message is accepted (the probe subscribes at QoS 1, so
  none may come: paho would keep each one until its PUBREL), and no more
  than ``_MAX_UNSENT`` of our own packets wait to be sent (past that, the
  probe stops reading until the broker reads): memory stays bounded;
- a packet that breaks the protocol is ``malformed_packet``, saying which
  packet and why; outcomes are classified on the codes the broker sent
  (``core.classify``), never on what ``loop()`` returns.

This module also owns the MQTT 5 -> 3.1.1 fallback (``open_session``).
"""

from __future__ import annotations

import select
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt_tls_probe import aio
from mqtt_tls_probe.adapters.tls import handshake_error
from mqtt_tls_probe.config import MqttOptions, TlsOptions
from mqtt_tls_probe.core import mqtt_wire
from mqtt_tls_probe.core.classify import (
    Connack,
    connack_error,
    no_connack_hint,
    sat_needs_v5,
    v311_return_code_name,
)
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import RoundtripInfo

_AUTH = 0xF0
_CONTINUE_AUTHENTICATION = 0x18
_POLL = 0.25  # longest single wait inside the loop; the deadline is what bounds
_SUBSCRIBE_QOS = 1
MAX_PACKET_SIZE = 1 << 20  # the largest packet read from a broker, fixed header included
_MAX_UNSENT = 64  # our own packets (acknowledgements) waiting to be sent, at most

MQTT_VERSIONS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}

_CONNACK_PROPERTIES = {
    "MaximumQoS": "maximum_qos",
    "ReceiveMaximum": "receive_maximum",
    "MaximumPacketSize": "maximum_packet_size",
    "TopicAliasMaximum": "topic_alias_maximum",
    "SessionExpiryInterval": "session_expiry_interval",
    "AssignedClientIdentifier": "assigned_client_identifier",
    "ServerKeepAlive": "server_keep_alive",
    "RetainAvailable": "retain_available",
    "ReasonString": "reason_string",
}


class _Refused(OSError):
    """Raised from ``recv`` to make paho drop the connection (paho: "connection lost")."""


class _WireGuard:
    """The socket paho reads and writes: the probe's TLS socket, under a deadline and a size cap.

    Every byte paho reads passes through ``recv``, in order, so the frame
    scanner sees each fixed header complete before paho asks for the body.
    """

    def __init__(self, sock: socket.socket, unsent: Callable[[], int]) -> None:
        self._sock = sock
        self._unsent = unsent
        self._frames = mqtt_wire.FrameScanner(MAX_PACKET_SIZE)
        self.deadline = float("inf")  # monotonic; recv reads nothing once it has passed
        self.refusal: mqtt_wire.Refusal | None = None  # the packet the scanner refused

    @property
    def backlogged(self) -> bool:
        return self._unsent() >= _MAX_UNSENT

    def recv(self, size: int) -> bytes:
        if self.backlogged or time.monotonic() >= self.deadline:
            raise BlockingIOError  # paho returns from loop(); the caller sees why
        data = self._sock.recv(size)
        refusal = self._frames.feed(data)
        if refusal is not None:
            self.refusal = refusal
            raise _Refused(refusal.text)
        return data

    def send(self, data: bytes | bytearray) -> int:
        return self._sock.send(data)

    def pending(self) -> int:
        # A plain socket (a listener without TLS) buffers nothing of its own.
        return self._sock.pending() if isinstance(self._sock, ssl.SSLSocket) else 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def close(self) -> None:
        self._sock.close()

    def wait_writable(self, seconds: float) -> None:
        """While our packets cannot be sent, wait for room rather than read more."""
        select.select([], [self._sock], [], seconds)


class _Disconnect(NamedTuple):
    """A DISCONNECT the broker sent (MQTT 5): its reason code, name and reason string."""

    code: int
    name: str
    reason_string: str | None


class _PahoOnSocket(paho.Client):
    """paho's protocol engine on a socket the probe connected and verified itself."""

    def __init__(self, sock: socket.socket, options: MqttOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.guard = _WireGuard(sock, lambda: len(self._out_packet))
        self._probe_socket: _WireGuard | None = self.guard
        self._sat_token = options.sat_token
        self._version = options.version
        self.raw_connack: bytes | None = None
        self.connack_reason: ReasonCode | None = None
        self.connack_properties: Properties | None = None
        self.broker_disconnect: _Disconnect | None = None
        self.violation: str | None = None  # the packet that broke the protocol, as a phrase
        self.auth_exchanges = 0
        self.on_connect = self._remember_connack
        self.on_disconnect = self._remember_disconnect

    def _create_socket(self) -> Any:
        sock, self._probe_socket = self._probe_socket, None
        if sock is None:  # paho never reconnects here (reconnect_on_failure=False)
            raise ConnectionError("the probe's connection is already used")
        return sock

    def _packet_handle(self) -> MQTTErrorCode:
        command = self._in_packet["command"]
        body = bytes(self._in_packet["packet"])
        problem = mqtt_wire.check_packet(command, body, self._version) or _unwanted(command)
        if problem is not None:
            self.violation = problem
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        if command & 0xF0 == _AUTH:
            return self._answer_auth()
        try:
            rc = super()._packet_handle()
        except MalformedPacket as exc:  # a check above is missing a rule paho has
            self.violation = f"{mqtt_wire.named(command)} that paho-mqtt rejects ({exc})"
            raise
        if command & 0xF0 == PacketTypes.CONNACK << 4:
            self.raw_connack = body  # paho accepted it (a refusal included)
        elif rc == MQTTErrorCode.MQTT_ERR_PROTOCOL:
            refused = mqtt_wire.named(command)
            self.violation = f"{refused} that paho-mqtt refuses as a protocol error"
        return rc

    def _remember_connack(
        self, _client: Any, _userdata: Any, _flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self.connack_reason, self.connack_properties = reason, properties

    def _remember_disconnect(
        self, _client: Any, _userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        # paho reports a lost connection and a broker's DISCONNECT alike; keep the latter.
        if flags.is_disconnect_packet_from_server:
            said = getattr(properties, "ReasonString", None)
            self.broker_disconnect = _Disconnect(reason.value, reason.getName(), said)

    def release(self) -> None:
        """Close the socket, and paho's wake-up socket pair if paho made one."""
        self._reset_sockets()

    def loop(self, timeout: float = 1.0) -> MQTTErrorCode:
        """One pass of paho's loop, without making its wake-up socket pair.

        paho makes that pair (a loopback TCP connection: listen, connect,
        accept) only to break out of select() when another thread publishes;
        the probe drives paho from one thread, and a scan would pay three
        sockets and a loopback handshake per target for nothing.
        """
        return self._loop(timeout)

    def _answer_auth(self) -> MQTTErrorCode:
        """Answer the broker's AUTH challenge with the same token (K8S-SAT has one step)."""
        self.auth_exchanges += 1
        if self._sat_token is None:
            self.violation = "an AUTH packet, but this client started no enhanced authentication"
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        properties = Properties(PacketTypes.AUTH)
        properties.AuthenticationMethod = aio.SAT_AUTH_METHOD
        properties.AuthenticationData = self._sat_token
        body = bytes([_CONTINUE_AUTHENTICATION]) + properties.pack()
        packet = bytearray([_AUTH])
        self._pack_remaining_length(packet, len(body))
        packet += body
        return self._packet_queue(_AUTH, packet, 0, 0)


def _unwanted(command: int) -> str | None:
    """A well-formed packet the probe still refuses: QoS 2 on a QoS 1 subscription."""
    if command & 0xF0 == PacketTypes.PUBLISH << 4 and mqtt_wire.publish_qos(command) == 2:
        return (
            "a QoS 2 PUBLISH, but this client subscribes at QoS 1 only "
            "(a broker delivers at most at the QoS it granted)"
        )
    return None


class _ClosedOnConnect(ProbeError):
    """The broker closed the connection after CONNECT without any answer (the fallback's cue)."""


class MqttSession:
    """One MQTT session over an established TLS connection."""

    def __init__(
        self, sock: socket.socket, options: MqttOptions, tls_options: TlsOptions, port: int
    ) -> None:
        self._sock = sock
        self._options = options
        self._tls_options = tls_options
        self._port = port
        self._version = options.version
        self._client = _PahoOnSocket(
            sock,
            options,
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=MQTT_VERSIONS[options.version],
            # Otherwise paho silently downgrades to MQTT 3.1 and reconnects.
            reconnect_on_failure=False,
        )
        self._client.suppress_exceptions = False
        self._guard = self._client.guard
        if options.username is not None:
            # paho sends bytes as they are (MQTT passwords are binary data).
            self._client.username_pw_set(options.username, options.password)  # type: ignore[arg-type]

    @property
    def auth_exchanges(self) -> int:
        return self._client.auth_exchanges

    def connect(self, deadline: float, timeout: float) -> Connack:
        """Send CONNECT and wait for CONNACK until ``deadline``; a refusal is returned, not raised.

        ``timeout`` is the stage's length, for messages.

        Raises:
            ProbeError: no CONNACK in time, the connection dropped, a malformed
                packet, or a TLS alert after the handshake (client certificates).
        """
        try:
            self._client.connect(
                self._tls_options.server_name,
                self._port,
                self._options.keepalive,
                properties=self._connect_properties(),
            )
        except OSError as exc:
            raise self._failure("while sending CONNECT", awaiting_connack=True) from exc
        self._wait(
            lambda: self._client.raw_connack is not None,
            deadline,
            lambda: ProbeError(
                ErrorKind.NO_CONNACK,
                f"The broker accepted the connection but sent no CONNACK within {timeout:g} s.",
                no_connack_hint(self._version, sat=self._options.sat_token is not None),
            ),
            "before CONNACK",
        )
        return self._connack()

    def _connect_properties(self) -> Properties | None:
        """The MQTT 5 CONNECT properties: K8S-SAT, and then the Maximum Packet Size too.

        A CONNECT without K8S-SAT carries no property at all: an MQTT 3.1.1-only
        broker (amqtt 0.12) answers a bare MQTT 5 CONNECT with "unacceptable
        protocol version", the fallback's cue, but never answers one with
        properties. The size limit holds either way (the guard enforces it).
        """
        if self._version != "5" or self._options.sat_token is None:
            return None
        properties = Properties(PacketTypes.CONNECT)
        properties.AuthenticationMethod = aio.SAT_AUTH_METHOD
        properties.AuthenticationData = self._options.sat_token
        properties.MaximumPacketSize = MAX_PACKET_SIZE
        return properties

    def _connack(self) -> Connack:
        """The CONNACK as sent, from what paho decoded (``core.mqtt_wire`` checked its form)."""
        raw = self._client.raw_connack
        assert raw is not None  # noqa: S101 (narrowing: _wait returned)
        code = raw[1]
        # Two bytes are the 3.1.1 form, which a 3.1.1-only broker (amqtt)
        # sends in answer to a v5 CONNECT; a v5 CONNACK has a property length.
        if self._version == "3.1.1" or len(raw) == 2:
            name = v311_return_code_name(code)
            return Connack(self._version, code, name, {}, answered_in_v311=self._version == "5")
        reason = self._client.connack_reason
        found: dict[str, int | str] = {}
        for attribute, key in _CONNACK_PROPERTIES.items():
            value = getattr(self._client.connack_properties, attribute, None)
            if value is not None:
                found[key] = value if isinstance(value, int | str) else str(value)
        name = reason.getName() if reason is not None else f"0x{code:02X}"
        return Connack(self._version, code, name, found)

    def roundtrip(self, topic: str, deadline: float, timeout: float) -> RoundtripInfo:
        """Subscribe at QoS 1, publish a unique message there at QoS 1, and wait for it.

        Raises:
            ProbeError: ``subscribe_refused``, ``publish_refused``,
                ``message_not_received``, ``malformed_packet``, ``connection_dropped``.
        """
        client = self._client
        payload = f"mqtt-tls-probe {uuid.uuid4().hex}".encode()
        acks: dict[str, Any] = {}

        def on_subscribe(_c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
            acks.setdefault("suback", (mid, codes))

        def on_publish(_c: Any, _u: Any, _mid: int, code: ReasonCode, _p: Any) -> None:
            acks.setdefault("puback_at", time.monotonic())
            acks.setdefault("puback", code)

        def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
            if message.payload == payload:
                acks.setdefault("received", time.monotonic())

        client.on_subscribe = on_subscribe
        client.on_publish = on_publish
        client.on_message = on_message
        started = time.monotonic()
        _, subscribe_id = client.subscribe(topic, qos=_SUBSCRIBE_QOS)
        if subscribe_id is None:  # paho has no connection left: something ended it already
            raise self._failure("before SUBSCRIBE", awaiting_connack=False)
        self._wait(
            lambda: "suback" in acks,
            deadline,
            lambda: ProbeError(
                ErrorKind.SUBSCRIBE_REFUSED,
                f"The broker did not acknowledge the SUBSCRIBE to {topic!r} within {timeout:g} s.",
            ),
            "before SUBACK",
        )
        self._check_suback(topic, subscribe_id, *acks["suback"])
        subscribed = time.monotonic()
        # The message may come back before the PUBACK: both are timed from the PUBLISH.
        client.publish(topic, payload, qos=1)
        self._wait(
            lambda: "puback" in acks,
            deadline,
            lambda: ProbeError(
                ErrorKind.PUBLISH_REFUSED,
                f"The broker did not acknowledge the QoS 1 PUBLISH to {topic!r} "
                f"within {timeout:g} s.",
            ),
            "before PUBACK",
        )
        puback = acks["puback"]
        if puback.value >= 0x80:
            raise ProbeError(
                ErrorKind.PUBLISH_REFUSED,
                f"The broker refused the message on {topic!r}: "
                f"PUBACK 0x{puback.value:02X} {puback.getName()}.",
            )
        self._wait(
            lambda: "received" in acks,
            deadline,
            lambda: ProbeError(
                ErrorKind.MESSAGE_NOT_RECEIVED,
                f"The broker acknowledged the message on {topic!r} but did not deliver it back "
                f"within {timeout:g} s.",
            ),
            "before the message came back",
        )
        # Leave nothing unread before DISCONNECT: closing on unread data resets
        # the connection, and the broker would log an abrupt client instead.
        client.on_unsubscribe = lambda *_args: acks.setdefault("unsuback", True)
        client.unsubscribe(topic)
        self._settle(lambda: "unsuback" in acks, min(deadline, time.monotonic() + _POLL))
        return RoundtripInfo(
            topic=topic,
            subscribe_ms=(subscribed - started) * 1000,
            publish_ms=(acks["puback_at"] - subscribed) * 1000,
            receive_ms=(acks["received"] - subscribed) * 1000,
        )

    def _check_suback(
        self, topic: str, subscribe_id: int, suback_id: int, codes: list[ReasonCode]
    ) -> None:
        problem = mqtt_wire.suback_problem(
            subscribe_id, suback_id, [c.value for c in codes], _SUBSCRIBE_QOS
        )
        if problem is not None:
            raise _malformed(problem)
        refused = [code for code in codes if code.value >= 0x80]
        if refused:
            raise ProbeError(
                ErrorKind.SUBSCRIBE_REFUSED,
                f"The broker refused the subscription to {topic!r}: "
                f"SUBACK 0x{refused[0].value:02X} {refused[0].getName()}.",
            )

    def close(self) -> None:
        """DISCONNECT cleanly (brokers log a protocol error when a client just drops)."""
        self._guard.deadline = 0.0  # send only: nothing more is read
        try:
            if self._client.is_connected():
                self._client.disconnect()
                self._client.loop(timeout=0)
        except (OSError, ValueError):
            pass
        finally:
            self._client.release()
            self._sock.close()

    def _wait(
        self,
        done: Callable[[], bool],
        deadline: float,
        on_timeout: Callable[[], ProbeError],
        when: str,
    ) -> None:
        self._guard.deadline = deadline
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise on_timeout()
            if self._guard.backlogged:
                self._guard.wait_writable(min(remaining, _POLL))
            rc = self._client.loop(timeout=min(remaining, _POLL))
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not done():
                raise self._failure(when, awaiting_connack=self._client.raw_connack is None)

    def _settle(self, done: Callable[[], bool], deadline: float) -> None:
        """Give the broker until ``deadline`` to answer; the outcome is known, so never fail."""
        self._guard.deadline = deadline
        while not done() and (remaining := deadline - time.monotonic()) > 0:
            if self._client.loop(timeout=remaining) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    def _failure(self, when: str, *, awaiting_connack: bool) -> ProbeError:
        """Why the connection ended before the awaited packet, most telling cause first."""
        refusal = self._guard.refusal
        if refusal is not None:
            return _malformed(refusal.text, _oversized_hint(refusal))
        if self._client.violation is not None:
            return _malformed(self._client.violation)
        tls_error = getattr(self._sock, "last_tls_error", None)
        if tls_error is not None:
            # A TLS alert after the handshake: with TLS 1.3, the server's verdict
            # on the client certificate, reported as the TLS failure it is.
            return handshake_error(tls_error, self._tls_options, 0, after_handshake=True)
        disconnect = self._client.broker_disconnect
        if disconnect is not None:
            said = f", saying {disconnect.reason_string!r}" if disconnect.reason_string else ""
            return ProbeError(
                ErrorKind.CONNECTION_DROPPED,
                f"The broker closed the connection {when}: it sent DISCONNECT "
                f"0x{disconnect.code:02X} {disconnect.name}{said}.",
            )
        closed = _ClosedOnConnect if awaiting_connack else ProbeError
        return closed(ErrorKind.CONNECTION_DROPPED, f"The broker closed the connection {when}.")


def _malformed(problem: str, hint: str | None = None) -> ProbeError:
    """``problem`` is a phrase naming the packet: "a CONNACK with the reason code 0x03, ..."."""
    return ProbeError(
        ErrorKind.MALFORMED_PACKET,
        f"The broker sent {problem}; the probe closed the connection.",
        hint,
    )


def _oversized_hint(refusal: mqtt_wire.Refusal) -> str | None:
    """A message over the limit may be legitimate traffic of a busy topic: say what to do."""
    if not (refusal.oversized and refusal.packet is mqtt_wire.PacketType.PUBLISH):
        return None
    return (
        f"The broker sends messages of over {MAX_PACKET_SIZE} bytes on this topic, more than "
        "the probe reads: run the round trip on a topic of its own (--topic)."
    )


def default_topic(client_id: str) -> str:
    return f"probe/{client_id}"


class SessionOutcome(NamedTuple):
    """An MQTT session whose CONNECT was answered, and how the answer came about."""

    session: MqttSession
    connack: Connack
    refused_v5: Connack | None = None  # set when MQTT 5 was refused and 3.1.1 retried
    dropped_v5: bool = False  # the broker closed the connection on the MQTT 5 CONNECT

    @property
    def fell_back(self) -> bool:
        return self.refused_v5 is not None or self.dropped_v5


def open_session(
    sock: socket.socket,
    reconnect: Callable[[], socket.socket],
    *,
    options: MqttOptions,
    tls_options: TlsOptions,
    port: int,
    deadline: float,
    timeout: float,
    allow_fallback: bool,
) -> SessionOutcome:
    """CONNECT on ``sock``; when the broker refuses MQTT 5, or closes the
    connection on it without a word, retry once with 3.1.1.

    The retry needs a new connection (``reconnect``) and happens only when the
    version was not chosen explicitly and no K8S-SAT token is sent (3.1.1
    cannot carry it); it shares the stage's ``deadline``. A refusal is
    returned in the outcome, not raised.

    Raises:
        ProbeError: no CONNACK, a dropped connection, a malformed packet.
    """
    may_retry = allow_fallback and options.version == "5" and options.sat_token is None
    session = MqttSession(sock, options, tls_options, port)
    try:
        connack = _connected(session, deadline, timeout)
    except _ClosedOnConnect:
        if not may_retry:
            raise
        return _retry_in_311(
            reconnect, options, tls_options, port=port, deadline=deadline, timeout=timeout
        )
    if not (may_retry and connack.refuses_version):
        return SessionOutcome(session, connack)  # a K8S-SAT refusal: the caller says why
    session.close()
    return _retry_in_311(
        reconnect,
        options,
        tls_options,
        port=port,
        deadline=deadline,
        timeout=timeout,
        refused=connack,
    )


def _connected(session: MqttSession, deadline: float, timeout: float) -> Connack:
    """``session.connect``, closing the session when it fails."""
    try:
        return session.connect(deadline, timeout)
    except BaseException:
        session.close()
        raise


def _retry_in_311(
    reconnect: Callable[[], socket.socket],
    options: MqttOptions,
    tls_options: TlsOptions,
    *,
    port: int,
    deadline: float,
    timeout: float,
    refused: Connack | None = None,
) -> SessionOutcome:
    """The one retry with MQTT 3.1.1, after MQTT 5 was ``refused`` (None: dropped)."""
    retry = MqttSession(reconnect(), options._replace(version="3.1.1"), tls_options, port)
    try:
        connack = _connected(retry, deadline, timeout)
    except _ClosedOnConnect as exc:
        if refused is not None:
            raise
        raise ProbeError(
            ErrorKind.CONNECTION_DROPPED,
            "The broker closed the connection on an MQTT 5 CONNECT, and again on an "
            "MQTT 3.1.1 CONNECT, without any CONNACK.",
            "Check that this port is the broker's MQTT listener and read the broker's log: "
            "it may refuse this client (client id, address) before answering.",
        ) from exc
    return SessionOutcome(retry, connack, refused_v5=refused, dropped_v5=refused is None)


def refusal(outcome: SessionOutcome, options: MqttOptions) -> ProbeError | None:
    """The failure a CONNACK means, or None when the broker accepted the client."""
    connack = outcome.connack
    if connack.refuses_version and options.sat_token is not None and options.version == "5":
        return ProbeError.from_info(sat_needs_v5(connack))
    if connack.accepted:
        return None
    sat = options.sat_token is not None
    return ProbeError.from_info(connack_error(connack, sat=sat, username=options.username))
