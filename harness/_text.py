"""Text from untrusted sources made safe to print on a terminal."""

from __future__ import annotations

import re

__all__ = ["printable"]

# C0 and C1 control characters (ESC starts ANSI sequences; newlines and carriage returns forge lines), DEL,
# and the Unicode bidirectional overrides and isolates (they reorder what a terminal shows).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\n``, ``\\u202e``), so that a
    function name, an exception message or a name read from a file prints as one inert line."""
    def escape(match: re.Match) -> str:
        ch = match.group()
        if ch in _NAMED:
            return _NAMED[ch]
        return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"

    return _CONTROL.sub(escape, str(text))
