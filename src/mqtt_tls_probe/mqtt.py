"""The ``mqtt`` and ``roundtrip`` stages, with paho-mqtt as the protocol engine.

paho dials its own sockets, but the probe has already connected and verified
one: that is what lets it time resolve, tcp and tls apart, and never send a
password or token over a connection it has not verified. ``_PahoOnSocket`` is
the seam. It hands paho that socket, keeps each CONNACK as the broker sent it
(paho rewrites MQTT 3.1.1 return codes as v5 reason codes), and answers AUTH
packets, which paho 2.x does not handle. Those three overrides touch paho
internals (pinned to paho-mqtt 2.x); the tests against amqtt, mosquitto and
the suite's own MQTT 5 server cover each of them. ``release`` closes what
paho's ``loop()`` opens, which paho leaves to garbage collection.

Every wait is bounded by a deadline of our own; outcomes are classified on
the codes the broker sent, never on what ``loop()`` returns.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from mqtt_tls_probe import aio
from mqtt_tls_probe.config import MqttOptions
from mqtt_tls_probe.errors import ErrorKind, ProbeError
from mqtt_tls_probe.model import RoundtripInfo
from mqtt_tls_probe.tls import TlsOptions, classify_handshake_error

_AUTH = 0xF0
_CONTINUE_AUTHENTICATION = 0x18
_POLL = 0.25  # longest single wait inside the loop; the deadline is what bounds

MQTT_VERSIONS = {"5": paho.MQTTv5, "3.1.1": paho.MQTTv311}

# MQTT 3.1.1 CONNACK return codes (section 3.2.2.3) and what they mean here.
_V311_CODES: dict[int, tuple[str, ErrorKind]] = {
    1: ("Connection Refused, unacceptable protocol version", ErrorKind.PROTOCOL_UNSUPPORTED),
    2: ("Connection Refused, identifier rejected", ErrorKind.CLIENT_ID_REJECTED),
    3: ("Connection Refused, Server unavailable", ErrorKind.SERVER_UNAVAILABLE),
    4: ("Connection Refused, bad user name or password", ErrorKind.BAD_CREDENTIALS),
    5: ("Connection Refused, not authorized", ErrorKind.NOT_AUTHORIZED),
}
# MQTT 5 CONNACK reason codes (section 3.2.2.2); unlisted failures are
# "the server will not serve this client now".
_V5_KINDS: dict[int, ErrorKind] = {
    0x81: ErrorKind.PROTOCOL_UNSUPPORTED,  # Malformed Packet
    0x82: ErrorKind.PROTOCOL_UNSUPPORTED,  # Protocol Error
    0x84: ErrorKind.PROTOCOL_UNSUPPORTED,  # Unsupported Protocol Version
    0x85: ErrorKind.CLIENT_ID_REJECTED,  # Client Identifier not valid
    0x86: ErrorKind.BAD_CREDENTIALS,  # Bad User Name or Password
    0x87: ErrorKind.NOT_AUTHORIZED,  # Not authorized
    0x8A: ErrorKind.NOT_AUTHORIZED,  # Banned
    0x8C: ErrorKind.BAD_AUTH_METHOD,  # Bad authentication method
    0x95: ErrorKind.PROTOCOL_UNSUPPORTED,  # Packet too large
    0x9A: ErrorKind.PROTOCOL_UNSUPPORTED,  # Retain not supported
    0x9B: ErrorKind.PROTOCOL_UNSUPPORTED,  # QoS not supported
}
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


@dataclass(frozen=True)
class Connack:
    """A CONNACK as the broker sent it."""

    version: str
    code: int
    reason: str
    properties: dict[str, int | str]
    answered_in_v311: bool = False  # a v3.1.1-only broker answering a v5 CONNECT

    @property
    def accepted(self) -> bool:
        return self.code == 0

    @property
    def refuses_version(self) -> bool:
        if self.answered_in_v311:
            return self.code == 1
        return self.code == 0x84

    def code_text(self) -> str:
        if self.version == "5" and not self.answered_in_v311:
            return f"0x{self.code:02X} {self.reason}"
        text = f"return code {self.code}, {self.reason}"
        return f"{text}, in MQTT 3.1.1 form" if self.answered_in_v311 else text


def connack_error(connack: Connack, options: MqttOptions) -> ProbeError:
    """The ``mqtt`` stage failure for a refused CONNACK; the hint fits how the client signed in."""
    if connack.version == "5" and not connack.answered_in_v311:
        kind = _V5_KINDS.get(connack.code, ErrorKind.SERVER_UNAVAILABLE)
    else:
        kind = _V311_CODES.get(connack.code, ("", ErrorKind.SERVER_UNAVAILABLE))[1]
    said = f"The broker refused the MQTT {connack.version} CONNECT: {connack.code_text()}"
    detail = connack.properties.get("reason_string")
    hint = None
    if kind in (ErrorKind.NOT_AUTHORIZED, ErrorKind.BAD_CREDENTIALS):
        if options.sat_token is not None:
            hint = (
                "The broker did not accept the service account token: create a current one "
                f"(kubectl create token SA -n {aio.NAMESPACE} --audience {aio.SAT_AUDIENCE}) "
                "and check that the listener's BrokerAuthentication admits that service account."
            )
        elif options.username is None:
            hint = "The broker refuses anonymous clients: pass --username and --password-file."
        else:
            hint = (
                f"Check the password of {options.username!r} (--password-file or "
                "$PROBE_MQTT_PASSWORD) and the broker's authorization rules for it."
            )
    return ProbeError(kind, said + (f", saying {detail!r}." if detail else "."), hint)


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
        """Close the socket and paho's wake-up socket pair (a loop() creates it)."""
        self._reset_sockets()

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
                _no_connack_hint(self._options),
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
            return classify_handshake_error(tls_error, self._tls_options, 0, after_handshake=True)
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
        name = "Connection Accepted" if code == 0 else _V311_CODES.get(code, ("Unknown",))[0]
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


def _no_connack_hint(options: MqttOptions) -> str:
    if options.version == "5" and options.sat_token is not None:
        return (
            "A broker that does not know MQTT 5 enhanced authentication may stay silent: check "
            "that this listener uses K8S-SAT authentication (an MQTT 3.1.1-only broker, such as "
            "amqtt, never answers a v5 CONNECT with properties)."
        )
    return "Check the broker's log; try --mqtt-version 3.1.1 if it is an MQTT 3.1.1-only broker."


def default_topic(client_id: str) -> str:
    return f"probe/{client_id}"
