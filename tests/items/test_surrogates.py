"""SurrogateGuard finds the first lone surrogate escape wherever read boundaries fall."""

from __future__ import annotations

import io
import random

import pytest

from app.items.surrogates import SurrogateGuard

HEX = "0123456789abcdefABCDEF"


def reference(data: bytes) -> int | None:
    """Offset of the first lone surrogate escape, by walking the bytes one at a time."""
    i, n = 0, len(data)
    while i < n:
        if data[i] != 0x5C:
            i += 1
            continue
        if i + 1 < n and data[i + 1] == 0x5C:
            i += 2  # an escaped backslash
            continue
        esc = data[i : i + 6]
        if len(esc) == 6 and esc[1:3].lower() == b"ud" and all(chr(c) in HEX for c in esc[3:]):
            kind = chr(esc[3]).lower()
            if kind in "89ab":
                low = data[i + 6 : i + 12]
                if not (
                    len(low) == 6
                    and low[:3].lower() == b"\\ud"
                    and chr(low[3]).lower() in "cdef"
                    and all(chr(c) in HEX for c in low[4:])
                ):
                    return i
                i += 12
                continue
            if kind in "cdef":
                return i
        i += 2
    return None


PIECES = [
    b"\\",
    b"\\\\",
    b"u",
    b"ud800",
    b"\\ud83d\\ude00",
    b"\\udc00",
    b"D9",
    b"x",
    b'"',
    b"\\u00e9",
    b"DBff",
]


def _stream(data: bytes, sizes: list[int]) -> tuple[bytes, int | None]:
    guard = SurrogateGuard(io.BytesIO(data))
    out = b""
    k = 0
    while True:
        chunk = guard.read(sizes[k % len(sizes)])
        k += 1
        if not chunk:
            return out, guard.found
        out += chunk


@pytest.mark.parametrize("seeds", [range(0, 100), range(100, 200)])
def test_guard_matches_the_reference_for_any_read_sizes(seeds: range) -> None:
    for seed in seeds:
        _check(seed)


def _check(seed: int) -> None:
    rng = random.Random(seed)
    data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 400)))
    choices = [1, 2, 3, 7, 64, 1000, 65536]
    if rng.random() < 0.3:
        data = b"x" * rng.randint(0, 70_000) + data  # escapes across the 64 KiB reads
        choices = [1000, 4099, 65536]
    sizes = [rng.choice(choices) for _ in range(5)]
    out, found = _stream(data, sizes)
    expected = reference(data)
    assert found == expected, f"seed {seed}"
    assert out == (data if expected is None else data[:expected]), f"seed {seed}"


def test_paired_and_escaped_sequences_pass_untouched() -> None:
    data = b'["\\ud83d\\ude00 ok", "\\\\ud800 is text", "\\u00e9", "\\uD7FF"]' * 5000
    out, found = _stream(data, [65536])
    assert (out, found) == (data, None)
