"""The text of a handshake trace: one line per TLS message, indented under its stage line.

Rule: read the events, compute nothing. Each line says when (ms since the handshake
began), which way (``->`` sent by the probe, ``<-`` received), the message's RFC name,
the protocol version, its size and the decoded fields. Values come from the peer:
characters that could move the terminal's cursor are escaped. Long lists are cut in the
text (``+N more``); the JSON document (``tls.trace``) holds them whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mqtt_tls_probe.core.tls_messages import TraceEvent

INDENT = " " * 8
MAX_LIST_ITEMS = 6
_ARROWS = {"sent": "->", "received": "<-"}


def trace_lines(events: Sequence[TraceEvent]) -> list[str]:
    """The trace block; a line saying so when nothing was recorded."""
    if not events:
        return [f"{INDENT}(no TLS message was recorded)"]
    width = max(len(event.type) for event in events)
    return [_line(event, width) for event in events]


def _line(event: TraceEvent, width: int) -> str:
    arrow = _ARROWS.get(event.direction, "??")
    head = f"{INDENT}{event.ms:8.1f} ms {arrow} {event.type:<{width}} {event.version:<7} "
    head += f"{event.size:>5} B"
    fields = "  ".join(f"{key}={_value(value)}" for key, value in event.fields.items())
    return f"{head}  {fields}".rstrip()


def _value(value: object) -> str:
    if isinstance(value, tuple | list):
        return _items(value)
    if value is None:
        return "-"
    return _printable(str(value))


def _items(values: Iterable[object]) -> str:
    items = [_printable(str(item)) for item in values]
    if not items:
        return "[]"
    if len(items) > MAX_LIST_ITEMS:
        items = [*items[:MAX_LIST_ITEMS], f"+{len(items) - MAX_LIST_ITEMS} more"]
    return ",".join(items)


def _printable(text: str) -> str:
    """Escape control characters (C0, DEL, C1) the way Python's repr writes them."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
