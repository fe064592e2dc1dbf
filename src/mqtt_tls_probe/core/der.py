"""A minimal, strict reader of DER (X.690) for the certificate fields the probe reports.

Rule: DER only. Whatever BER allows and DER forbids (indefinite lengths, long-form
lengths that fit a shorter form, non-minimal INTEGERs and OID arcs, BOOLEAN TRUE
other than 0xFF, non-zero padding bits, time forms other than RFC 5280's) raises
``DerError``; so does a length that runs past its buffer. No I/O, no clock, no
third-party module: callers turn ``DerError`` into "not sure" and fall back to
``cryptography``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

# Universal tag numbers used by X.509.
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
IA5_STRING = 0x16
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
BMP_STRING = 0x1E
SEQUENCE = 0x30  # the identifier octet, constructed
SET = 0x31

# What cryptography's ASN.1 reader (rust-asn1) accepts, and no more: an OID of at
# most 63 encoded bytes, and PrintableString's alphabet (X.680 41.4).
MAX_OID_LENGTH = 63
_PRINTABLE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"


class DerError(ValueError):
    """The bytes are not the strict DER this reader accepts."""


class Element(NamedTuple):
    """One TLV: ``tag`` is the identifier octet (class, constructed bit, number < 31)."""

    tag: int
    start: int  # offset of the identifier octet
    content: int  # offset of the first content octet
    end: int  # offset just past the element

    def value(self, data: bytes) -> bytes:
        return data[self.content : self.end]


def read(data: bytes, at: int = 0, limit: int | None = None) -> Element:
    """The element starting at ``at``, which must end at or before ``limit``."""
    stop = len(data) if limit is None else limit
    if at + 2 > stop:
        raise DerError("truncated element header")
    tag = data[at]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag number form is not supported")
    first = data[at + 1]
    pos = at + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length")
    else:
        count = first & 0x7F
        if count > 4:  # lengths beyond 4 GiB are never real certificates
            raise DerError("length of length too large")
        if pos + count > stop:
            raise DerError("truncated length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if data[pos] == 0 or length < 0x80:
            raise DerError("non-minimal length")
        pos += count
    end = pos + length
    if end > stop:
        raise DerError("length runs past the buffer")
    return Element(tag, at, pos, end)


def read_single(data: bytes, tag: int) -> Element:
    """The one element of ``data``, with ``tag``; trailing bytes are an error."""
    element = read(data)
    if element.tag != tag:
        raise DerError(f"expected tag {tag:#04x}, found {element.tag:#04x}")
    if element.end != len(data):
        raise DerError("trailing bytes")
    return element


def children(data: bytes, parent: Element, at_most: int | None = None) -> list[Element]:
    """The elements inside a constructed ``parent``, which must fill it exactly.

    ``at_most`` stops early on a structure of known size, so that a megabyte of
    tiny elements costs nothing where three are expected.
    """
    if not parent.tag & 0x20:
        raise DerError("not a constructed element")
    found: list[Element] = []
    at = parent.content
    while at < parent.end:
        if at_most is not None and len(found) == at_most:
            raise DerError("more elements than the structure has")
        element = read(data, at, parent.end)
        found.append(element)
        at = element.end
    return found


def expect(element: Element, tag: int) -> Element:
    if element.tag != tag:
        raise DerError(f"expected tag {tag:#04x}, found {element.tag:#04x}")
    return element


def oid(data: bytes, element: Element) -> str:
    """An OBJECT IDENTIFIER in dotted form; non-minimal arcs are refused."""
    expect(element, OID)
    body = element.value(data)
    if not body or body[-1] & 0x80:
        raise DerError("empty or unterminated OID")
    if len(body) > MAX_OID_LENGTH:  # also keeps the arcs' arithmetic linear
        raise DerError("OID longer than cryptography reads")
    arcs: list[int] = []
    value = 0
    fresh = True
    for byte in body:
        if fresh and byte == 0x80:
            raise DerError("non-minimal OID arc")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            if value >= 1 << 128:
                raise DerError("OID arc larger than cryptography reads")
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(str(arc) for arc in head + arcs[1:])


def integer(data: bytes, element: Element) -> int:
    """An INTEGER (two's complement); empty or non-minimal encodings are refused."""
    expect(element, INTEGER)
    body = element.value(data)
    if not body:
        raise DerError("empty INTEGER")
    if len(body) > 1 and (
        (body[0] == 0 and body[1] < 0x80) or (body[0] == 0xFF and body[1] >= 0x80)
    ):
        raise DerError("non-minimal INTEGER")
    return int.from_bytes(body, "big", signed=True)


def boolean(data: bytes, element: Element) -> bool:
    """A BOOLEAN: DER allows 0x00 and 0xFF only."""
    expect(element, BOOLEAN)
    body = element.value(data)
    if body == b"\xff":
        return True
    if body == b"\x00":
        return False
    raise DerError("BOOLEAN is not DER")


def bit_string(data: bytes, element: Element) -> tuple[bytes, int]:
    """A BIT STRING's octets and its count of unused bits, which must be zero bits."""
    expect(element, BIT_STRING)
    body = element.value(data)
    if not body:
        raise DerError("empty BIT STRING")
    unused = body[0]
    bits = body[1:]
    if unused > 7 or (unused and not bits):
        raise DerError("bad unused-bits count")
    if unused and bits[-1] & ((1 << unused) - 1):
        raise DerError("non-zero padding bits")
    return bits, unused


def octet_string(data: bytes, element: Element) -> bytes:
    return expect(element, OCTET_STRING).value(data)


def time(data: bytes, element: Element) -> datetime:
    """UTCTime ``YYMMDDHHMMSSZ`` (50-year pivot) or GeneralizedTime ``YYYYMMDDHHMMSSZ``."""
    body = element.value(data)
    if element.tag == UTC_TIME:
        if len(body) != 13:
            raise DerError("UTCTime is not YYMMDDHHMMSSZ")
        digits, year_size = body, 2
    elif element.tag == GENERALIZED_TIME:
        if len(body) != 15:
            raise DerError("GeneralizedTime is not YYYYMMDDHHMMSSZ")
        digits, year_size = body, 4
    else:
        raise DerError("not a time")
    if digits[-1:] != b"Z" or not digits[:-1].isdigit():
        raise DerError("time is not digits and Z")
    text = digits[:-1].decode("ascii")
    year = int(text[:year_size])
    if year_size == 2:
        year += 1900 if year >= 50 else 2000
    rest = text[year_size:]
    try:
        return datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise DerError(f"invalid time: {exc}") from exc


def string(data: bytes, element: Element) -> str:
    """A directory string's text: UTF8String, PrintableString or IA5String read as
    UTF-8, BMPString as UTF-16-BE (what cryptography does with each).

    A PrintableString outside its alphabet (``*``, ``_``, ``@``: common in real
    certificates) or an IA5String outside ASCII is refused: cryptography cannot
    load a certificate that holds one.
    """
    body = element.value(data)
    if element.tag == PRINTABLE_STRING and body.translate(None, _PRINTABLE):
        raise DerError("PrintableString outside its alphabet")
    if element.tag == IA5_STRING and not body.isascii():
        raise DerError("IA5String outside ASCII")
    try:
        if element.tag in (UTF8_STRING, PRINTABLE_STRING, IA5_STRING):
            return body.decode("utf-8")
        if element.tag == BMP_STRING:
            return body.decode("utf-16-be")
    except UnicodeDecodeError as exc:
        raise DerError(f"invalid string: {exc}") from exc
    raise DerError(f"unsupported string tag {element.tag:#04x}")
