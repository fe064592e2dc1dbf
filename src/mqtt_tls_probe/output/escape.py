"""The one escaping function of text output: what came from outside never drives the terminal.

Rule: every line of text output passes through ``escape_controls`` (the text
renderer applies it to each line it builds, the CLI to each line it writes on
stderr). Values from the network, files, the cluster or argv are shown with
their control characters as escapes: ESC as ``\\x1b``, a newline inside a value
as ``\\x0a``. The renderer's own line breaks are the only raw ones.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; line and paragraph separators; the bidirectional
# marks, embeddings, overrides and isolates that reorder what a terminal shows
# ("Trojan Source"); and surrogates, which no encoding can write.
_UNSAFE = "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
_SURROGATE_ESCAPES = range(0xDC80, 0xDD00)  # bytes the OS gave undecoded (surrogateescape)


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a Python-style escape."""
    if text.isascii() and text.isprintable():  # most lines: nothing to escape, no regex
        return text
    return re.sub(_UNSAFE, _escape, text)  # compiled on first use (re caches it)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in _SURROGATE_ESCAPES:
        return f"\\x{code - 0xDC00:02x}"  # the original byte, as a file name held it
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
