"""The ``mqtt`` and ``roundtrip`` stages, with paho-mqtt as the protocol engine.

paho dials its own sockets, but the probe has already connected and verified
one: that is what lets it time resolve, tcp and tls apart, and never send a
password or token over a connection it has not verified. ``_PahoOnSocket`` is
the seam. It hands paho that socket, keeps each CONNACK as the broker sent it
(paho rewrites MQTT 3.1.1 return codes as v5 reason codes), and answers AUTH
packets, which paho 2.x does not handle. ``release`` closes what paho's
``loop()`` opens, which paho leaves to garbage collection.

Those overrides lean on paho internals, read in paho-mqtt 2.2.0
(https://github.com/eclipse-paho/paho.mqtt.python/blob/v2.2.0/src/paho/mqtt/client.py);
``pyproject.toml`` pins paho to the 2.1-2.2 series accordingly, and the tests
against amqtt, mosquitto and the suite's own MQTT 5 server cover each of them:

- ``Client._create_socket`` (client.py line 4560): the one place paho opens a
  connection, called from ``connect()``/``reconnect()``;
- ``Client._in_packet`` (line 3155): the packet being handled, ``packet`` its
  body after the fixed header, ``command`` its first byte;
- ``Client._handle_connack`` (line 3849) and ``_handle_disconnect`` (line
  4038), dispatched from ``_packet_handle`` (line 3802), which has no branch
  for AUTH (0xF0) and answers it with ``MQTT_ERR_PROTOCOL``;
- ``_pack_remaining_length`` (line 3356) and ``_packet_queue`` (line 3764) to
  send the AUTH answer the way paho sends every packet;
- ``_reset_sockets`` (line 1126) to close the socket and the wake-up pair;
- ``_loop`` (line 1627), the body of ``loop()`` without the wake-up pair,
  which ``loop()`` creates first (line 1621).

This module also owns the MQTT 5 -> 3.1.1 fallback (``open_session``).
Every wait is bounded by a deadline of our own; outcomes are classified on
the codes the broker sent (``core.classify``), never on what ``loop()`` returns.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt_tls_probe import aio
from mqtt_tls_probe.adapters.tls import handshake_error
from mqtt_tls_probe.config import MqttOptions, TlsOptions
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


class _PahoOnSocket(paho.Client):
    """paho's protocol engine on a socket the probe connected and verified itself."""

    def __init__(self, sock: ssl.SSLSocket, sat_token: bytes | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._probe_socket: ssl.SSLSocket | None = sock
        self._sat_token = sat_token
        self.raw_connack: bytes | None = None
        self.broker_disconnect: int | None = None  # reason code of a DISCONNECT it sent
        self.auth_exchanges = 0

    def _create_socket(self) -> Any:
        sock, self._probe_socket = self._probe_socket, None
        if sock is None:  # paho never reconnects here (reconnect_on_failure=False)
            raise ConnectionError("the probe's connection is already used")
        return sock

    def _handle_connack(self) -> MQTTErrorCode:
        self.raw_connack = bytes(self._in_packet["packet"])
        return super()._handle_connack()

    def _handle_disconnect(self) -> None:
        # paho reports a lost connection and a broker's DISCONNECT alike; keep the latter.
        packet = self._in_packet["packet"]
        self.broker_disconnect = packet[0] if packet else 0
        super()._handle_disconnect()

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

    def _packet_handle(self) -> MQTTErrorCode:
        if self._in_packet["command"] & 0xF0 == _AUTH:
            return self._answer_auth()
        return super()._packet_handle()

    def _answer_auth(self) -> MQTTErrorCode:
        """Answer the broker's AUTH challenge with the same token (K8S-SAT has one step)."""
        self.auth_exchanges += 1
        if self._sat_token is None:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        properties = Properties(PacketTypes.AUTH)
        properties.AuthenticationMethod = aio.SAT_AUTH_METHOD
        properties.AuthenticationData = self._sat_token
        body = bytes([_CONTINUE_AUTHENTICATION]) + properties.pack()
        packet = bytearray([_AUTH])
        self._pack_remaining_length(packet, len(body))
        packet += body
        return self._packet_queue(_AUTH, packet, 0, 0)


class MqttSession:
    """One MQTT session over an established TLS connection."""

    def __init__(
        self, sock: ssl.SSLSocket, options: MqttOptions, tls_options: TlsOptions, port: int
    ) -> None:
        self._sock = sock
        self._options = options
        self._tls_options = tls_options
        self._port = port
        self._version = options.version
        self._client = _PahoOnSocket(
            sock,
            options.sat_token,
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=options.client_id,
            protocol=MQTT_VERSIONS[options.version],
            # Otherwise paho silently downgrades to MQTT 3.1 and reconnects.
            reconnect_on_failure=False,
        )
        self._client.suppress_exceptions = False
        if options.username is not None:
            # paho sends bytes as they are (MQTT passwords are binary data).
            self._client.username_pw_set(options.username, options.password)  # type: ignore[arg-type]

    @property
    def auth_exchanges(self) -> int:
        return self._client.auth_exchanges

    def connect(self, timeout: float) -> Connack:
        """Send CONNECT and wait for CONNACK; a refusal is returned, not raised.

        Raises:
            ProbeError: no CONNACK in time, the connection dropped, or a TLS
                alert arrived after the handshake (client certificates).
        """
        properties = None
        if self._version == "5" and self._options.sat_token is not None:
            properties = Properties(PacketTypes.CONNECT)
            properties.AuthenticationMethod = aio.SAT_AUTH_METHOD
            properties.AuthenticationData = self._options.sat_token
        deadline = time.monotonic() + timeout
        try:
            self._client.connect(
                self._tls_options.server_name,
                self._port,
                self._options.keepalive,
                properties=properties,
            )
        except OSError as exc:
            raise self._dropped("while sending CONNECT") from exc
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
        assert self._client.raw_connack is not None  # noqa: S101 (narrowing)
        return _decode_connack(self._client.raw_connack, self._version)

    def roundtrip(self, topic: str, timeout: float) -> RoundtripInfo:
        """Subscribe at QoS 1, publish a unique message there at QoS 1, and wait for it.

        Raises:
            ProbeError: ``subscribe_refused``, ``publish_refused`` or ``message_not_received``.
        """
        client = self._client
        deadline = time.monotonic() + timeout
        payload = f"mqtt-tls-probe {uuid.uuid4().hex}".encode()
        acks: dict[str, Any] = {}
        client.on_subscribe = lambda _c, _u, _mid, codes, _p: acks.setdefault("suback", codes)

        def on_publish(_c: Any, _u: Any, _mid: int, code: ReasonCode, _p: Any) -> None:
            acks.setdefault("puback_at", time.monotonic())
            acks.setdefault("puback", code)

        client.on_publish = on_publish

        def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
            if message.payload == payload:
                acks.setdefault("received", time.monotonic())

        client.on_message = on_message
        started = time.monotonic()
        client.subscribe(topic, qos=1)
        self._wait(
            lambda: "suback" in acks,
            deadline,
            lambda: ProbeError(
                ErrorKind.SUBSCRIBE_REFUSED,
                f"The broker did not acknowledge the SUBSCRIBE to {topic!r} within {timeout:g} s.",
            ),
            "before SUBACK",
        )
        refused = [code for code in acks["suback"] if code.value >= 0x80]
        if refused:
            raise ProbeError(
                ErrorKind.SUBSCRIBE_REFUSED,
                f"The broker refused the subscription to {topic!r}: "
                f"SUBACK 0x{refused[0].value:02X} {refused[0].getName()}.",
            )
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
        self._settle(lambda: "unsuback" in acks, _POLL)
        return RoundtripInfo(
            topic=topic,
            subscribe_ms=(subscribed - started) * 1000,
            publish_ms=(acks["puback_at"] - subscribed) * 1000,
            receive_ms=(acks["received"] - subscribed) * 1000,
        )

    def close(self) -> None:
        """DISCONNECT cleanly (brokers log a protocol error when a client just drops)."""
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
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise on_timeout()
            rc = self._client.loop(timeout=min(remaining, _POLL))
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not done():
                raise self._dropped(when)

    def _settle(self, done: Callable[[], bool], seconds: float) -> None:
        """Give the broker a moment to answer; the outcome is already known, so never fail."""
        deadline = time.monotonic() + seconds
        while not done() and (remaining := deadline - time.monotonic()) > 0:
            if self._client.loop(timeout=remaining) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    def _dropped(self, when: str) -> ProbeError:
        tls_error = getattr(self._sock, "last_tls_error", None)
        if tls_error is not None:
            # A TLS 1.3 alert after the handshake: the server's verdict on the
            # client certificate, reported as the TLS failure it is.
            return handshake_error(tls_error, self._tls_options, 0, after_handshake=True)
        code = self._client.broker_disconnect
        said = ""
        if code is not None:
            name = ReasonCode(PacketTypes.DISCONNECT, identifier=code).getName()
            said = f": it sent DISCONNECT 0x{code:02X} {name}"
        return ProbeError(
            ErrorKind.CONNECTION_DROPPED,
            f"The broker closed the connection {when}{said}.",
        )


def _decode_connack(raw: bytes, version: str) -> Connack:
    code = raw[1]
    # A v5 CONNACK always carries a property length; two bytes are the 3.1.1
    # form, which a 3.1.1-only broker (amqtt) sends in answer to a v5 CONNECT.
    if version == "3.1.1" or len(raw) == 2:
        name = v311_return_code_name(code)
        return Connack(version, code, name, {}, answered_in_v311=version == "5")
    reason = ReasonCode(PacketTypes.CONNACK, identifier=code).getName()
    properties = Properties(PacketTypes.CONNACK)
    properties.unpack(raw[2:])
    found: dict[str, int | str] = {}
    for attribute, key in _CONNACK_PROPERTIES.items():
        value = getattr(properties, attribute, None)
        if value is not None:
            found[key] = value if isinstance(value, int | str) else str(value)
    return Connack(version, code, reason, found)


def default_topic(client_id: str) -> str:
    return f"probe/{client_id}"


@dataclass
class SessionOutcome:
    """An MQTT session whose CONNECT was answered, and how the answer came about."""

    session: MqttSession
    connack: Connack
    refused_v5: Connack | None = None  # set when MQTT 5 was refused and 3.1.1 retried


def open_session(
    sock: ssl.SSLSocket,
    reconnect: Callable[[], ssl.SSLSocket],
    *,
    options: MqttOptions,
    tls_options: TlsOptions,
    port: int,
    timeout: float,
    allow_fallback: bool,
) -> SessionOutcome:
    """CONNECT on ``sock``; when the broker refuses MQTT 5, retry once with 3.1.1.

    The retry needs a new connection (``reconnect``) and happens only when the
    version was not chosen explicitly and no K8S-SAT token is sent (3.1.1
    cannot carry it). A refusal is returned in the outcome, not raised.

    Raises:
        ProbeError: no CONNACK, a dropped connection, or K8S-SAT refused with MQTT 5.
    """
    session = MqttSession(sock, options, tls_options, port)
    connack = session.connect(timeout)
    if not (connack.refuses_version and options.version == "5"):
        return SessionOutcome(session, connack)
    if options.sat_token is not None:
        return SessionOutcome(session, connack)  # the caller reports sat_needs_v5
    if not allow_fallback:
        return SessionOutcome(session, connack)
    session.close()
    retry = MqttSession(reconnect(), replace(options, version="3.1.1"), tls_options, port)
    return SessionOutcome(retry, retry.connect(timeout), refused_v5=connack)


def refusal(outcome: SessionOutcome, options: MqttOptions) -> ProbeError | None:
    """The failure a CONNACK means, or None when the broker accepted the client."""
    connack = outcome.connack
    if connack.refuses_version and options.sat_token is not None and options.version == "5":
        return ProbeError.from_info(sat_needs_v5(connack))
    if connack.accepted:
        return None
    sat = options.sat_token is not None
    return ProbeError.from_info(connack_error(connack, sat=sat, username=options.username))
