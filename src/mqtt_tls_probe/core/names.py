"""The names and strings flags give: host names, ALPN protocols, MQTT strings and topics.

Rule: pure. Each check returns the value as the network will carry it (a host
name as IDNA A-labels) or raises ``ValueError`` with one sentence saying what
is wrong, never echoing more than a short, escaped excerpt of the value. The
callers (``config`` and the orchestrators) turn that into a usage error, before
any network I/O.
"""

from __future__ import annotations

import ipaddress
import re

# MQTT 5 §1.5.4 and §1.5.6: UTF-8 strings and binary data carry a two-byte length.
MQTT_STRING_MAX = 65535
HOST_NAME_MAX = 253  # RFC 1035, without the trailing dot
# RFC 1123 labels (no hyphen at either end), plus underscores: Docker service names use them.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_ALPN_MAX = 255  # RFC 7301: a one-byte length
_EXCERPT = 40


def excerpt(value: str) -> str:
    """A short ``repr`` of a user's value for a message: escaped, and cut when long."""
    if len(value) <= _EXCERPT:
        return repr(value)
    return f"{value[:_EXCERPT]!r}... ({len(value)} characters)"


def host_name(name: str, *, wildcard: bool = False) -> str:
    """``name`` as a resolver and TLS take it: an IP literal as written, else ASCII (IDNA).

    ``wildcard`` allows a leading ``*.`` label (certificate SANs, never a target).

    Raises:
        ValueError: a scoped IPv6 address, or not a valid host name.
    """
    literal = _ip_literal(name)
    if literal is not None:
        return name
    body = name[:-1] if name.endswith(".") else name  # one trailing dot: a fully qualified name
    if not body:
        raise ValueError("the host name is empty")
    try:
        ascii_name = (idna_fast_path(body) or body.encode("idna")).decode("ascii")
    except UnicodeError as exc:
        raise ValueError(
            f"{excerpt(name)} is not a valid host name (IDNA: {_reason(exc)})"
        ) from exc
    labels = ascii_name.split(".")
    if wildcard and labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    bad = next((label for label in labels if not _LABEL.fullmatch(label)), None)
    if bad is not None:
        raise ValueError(
            f"{excerpt(name)} is not a valid host name: the label {excerpt(bad)} may hold only "
            "letters, digits, '-' and '_' (1 to 63 of them, no '-' at either end)"
        )
    if len(ascii_name) > HOST_NAME_MAX:
        raise ValueError(f"{excerpt(name)} is longer than {HOST_NAME_MAX} characters")
    return ascii_name.lower() + ("." if name.endswith(".") else "")  # DNS ignores case


def idna_fast_path(name: str) -> bytes | None:
    """What ``name.encode("idna")`` returns for an ASCII name it accepts; else None.

    The codec returns such a name unchanged after checking its label lengths;
    loading it imports ``encodings.idna``, ``stringprep`` and ``unicodedata``
    (1 to 2 ms of each start). None: let the codec itself encode, or refuse:
    https://github.com/python/cpython/blob/v3.11.7/Lib/encodings/idna.py#L150-L165
    """
    if not name.isascii():
        return None
    *labels, last = name.split(".")
    if all(0 < len(label) < 64 for label in labels) and len(last) < 64:
        return name.encode("ascii")
    return None


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError(
            f"{excerpt(name)} is a scoped IPv6 address: zones (%{address.scope_id}) are not "
            "supported; use a global or unique-local address, or a host name"
        )
    return address


def _reason(exc: UnicodeError) -> str:
    """The codec's reason without its wrapper text ("encoding with 'idna' codec failed (...)")."""
    text = str(exc)
    inner = re.search(r"\(UnicodeError: (.*)\)$", text)
    return excerpt(inner.group(1) if inner else text).strip("'\"")


def alpn_protocol(protocol: str) -> str:
    """One ALPN protocol id: 1 to 255 printable ASCII characters (``ssl`` sends them as ASCII).

    Raises:
        ValueError: empty, too long, or not printable ASCII.
    """
    if not protocol:
        raise ValueError("an ALPN protocol id cannot be empty")
    if not (protocol.isascii() and protocol.isprintable()):
        raise ValueError(f"{excerpt(protocol)} is not printable ASCII, as ALPN ids here must be")
    if len(protocol) > _ALPN_MAX:
        raise ValueError(f"{excerpt(protocol)} is longer than {_ALPN_MAX} bytes")
    return protocol


def mqtt_string(value: str, what: str) -> str:
    """An MQTT UTF-8 string: well-formed UTF-8, no U+0000, at most 65,535 bytes.

    Raises:
        ValueError: a lone surrogate (bytes the shell could not decode), NUL, or too long.
    """
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} {excerpt(value)} is not valid UTF-8 (it holds bytes the shell could not "
            "decode), which MQTT requires"
        ) from exc
    if "\x00" in value:
        raise ValueError(f"{what} {excerpt(value)} holds a NUL character, which MQTT forbids")
    if len(encoded) > MQTT_STRING_MAX:
        raise ValueError(
            f"{what} is {len(encoded):,} bytes long in UTF-8; MQTT allows at most "
            f"{MQTT_STRING_MAX:,}"
        )
    return value


def mqtt_topic_name(topic: str, what: str = "the topic") -> str:
    """A topic to publish to: a non-empty MQTT string without the wildcards ``+`` and ``#``.

    Raises:
        ValueError: what makes it unusable, before any SUBSCRIBE is sent.
    """
    mqtt_string(topic, what)
    if not topic:
        raise ValueError(f"{what} is empty; MQTT topics have at least one character")
    wildcards = [w for w in "+#" if w in topic]
    if wildcards:
        raise ValueError(
            f"{what} {excerpt(topic)} holds the wildcard {' and '.join(wildcards)}: a message "
            "can only be published to a topic name without wildcards"
        )
    return topic


def mqtt_binary(data: bytes, what: str) -> bytes:
    """MQTT binary data (a password, an authentication token): at most 65,535 bytes.

    Raises:
        ValueError: too long to fit the packet's two-byte length.
    """
    if len(data) > MQTT_STRING_MAX:
        raise ValueError(
            f"{what} is {len(data):,} bytes long; MQTT carries at most {MQTT_STRING_MAX:,}"
        )
    return data
