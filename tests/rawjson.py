"""JSON bodies that json.dumps will not write by default: NaN, Infinity, 1e400, lone surrogates."""

from __future__ import annotations

import json
from typing import Any

NAN = float("nan")
INF = float("inf")
NUL = "a\x00b"
SURROGATE = "a\ud800b"
BIG_FLOAT = "@@raw:1e400@@"  # written as the bare number 1e400 (inf once parsed)
BIGINT_MAX = 2**63 - 1


def raw(value: Any) -> bytes:
    """`value` as the JSON text a careless or hostile client sends: NaN and Infinity as bare
    words (Python's json module reads them), lone surrogates as \\ud800 escapes, 1e400 verbatim."""
    text = json.dumps(value, allow_nan=True, ensure_ascii=True)
    return text.replace(json.dumps(BIG_FLOAT), "1e400").encode()


JSON = {"Content-Type": "application/json"}
