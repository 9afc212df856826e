"""Stop a JSON byte stream at its first lone surrogate escape, which yajl would alter silently.

ijson's C backend (yajl) turns `"\\ud800"` into `"?"` and fails on a lone `"\\udc00"` with a
decoding error, where Python's json keeps the surrogate and lets validation reject it. To
treat both uploads alike, `SurrogateGuard` wraps the file that ijson reads and ends the
stream just before such an escape: the parser then fails inside the very row and field that
hold it, and `found` tells the caller why. Escapes are found with a regex over raw bytes (a
backslash run of odd length before `u` starts an escape), so the cost stays near a memcpy.
"""

from __future__ import annotations

import re
from typing import IO

_ESCAPE = re.compile(rb"(\\+)u[dD]([0-9a-fA-F])[0-9a-fA-F]{2}")
_LOW = re.compile(rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}")
READ_BYTES = 64 * 1024
# Bytes kept back after each read, so that an escape and the one pairing it are seen whole.
LOOKAHEAD = 64


class SurrogateGuard:
    """File-like for ijson: `read(n)` up to the first lone surrogate escape, then EOF."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self._pending = b""
        self._base = 0  # stream offset of _pending[0]
        self._carry = 0  # backslashes handed out right before _pending[0]
        self._eof = False
        self._paired_low = -1  # stream offset of a low escape already matched to its high
        self._judged = 0  # stream offset before which every escape has been judged
        self.found: int | None = None  # stream offset of the lone surrogate escape

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        if n == 0:
            return b""
        if self.found is None:
            self._fill(min(n, READ_BYTES) + LOOKAHEAD)
            lone = self._scan()
            if lone is not None:
                self.found = self._base + lone
        if self.found is not None:
            return self._take(min(n, self.found - self._base))
        return self._take(min(n, self._cut()))

    def _fill(self, want: int) -> None:
        while not self._eof and len(self._pending) < want:
            chunk = self._f.read(max(READ_BYTES, want - len(self._pending)))
            if not chunk:
                self._eof = True
            else:
                self._pending += chunk

    def _cut(self) -> int:
        """How much of _pending may be handed out: all at the end, else all but LOOKAHEAD."""
        return len(self._pending) if self._eof else max(0, len(self._pending) - LOOKAHEAD)

    def _scan(self) -> int | None:
        """Offset in _pending of the first lone surrogate escape before the cut, or None."""
        data, cut = self._pending, self._cut()
        for m in _ESCAPE.finditer(data):
            run = len(m.group(1)) + (self._carry if m.start(1) == 0 else 0)
            escape = m.end(1) - 1  # the backslash that starts the escape
            if escape >= cut:
                break
            if self._base + escape < self._judged or run % 2 == 0:
                continue  # an escaped backslash followed by plain text
            if m.group(2) in b"89abAB":  # a high surrogate must be followed by a low one
                if _LOW.match(data, m.end()) is None:
                    return escape
                self._paired_low = self._base + m.end()
            elif m.group(2) in b"cdefCDEF" and self._base + escape != self._paired_low:
                return escape
        self._judged = self._base + cut
        return None

    def _take(self, size: int) -> bytes:
        out, self._pending = self._pending[:size], self._pending[size:]
        self._base += len(out)
        trailing = len(out) - len(out.rstrip(b"\\"))
        self._carry = self._carry + trailing if trailing == len(out) else trailing
        return out
