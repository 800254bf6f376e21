"""Text from the data made safe to print on a terminal (issue #10).

A value may hold control characters a terminal obeys: escape sequences (ESC, or the one-byte
C1 CSI), a carriage return or backspaces that overwrite what was printed, bidi overrides that
reorder it. `visible` spells each one out as an escape (`\\x1b`, `\\r`, `\\u202e`), so what is
printed is what the data holds. A backslash already in the data is printed as it is.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, and the bidi marks, embeddings, overrides and isolates.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def visible(text: str) -> str:
    """`text` with every control character written as a visible escape."""
    return CONTROL.sub(lambda match: _escape(match.group(0)), text)


def _escape(char: str) -> str:
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def json_visible(text: str) -> str:
    """JSON text with the control characters JSON leaves raw (DEL, C1, bidi) as `\\uXXXX` escapes."""
    return CONTROL.sub(lambda match: match.group(0) if match.group(0) < " " else f"\\u{ord(match.group(0)):04x}", text)
