"""Validated types for every text, number and id that reaches PostgreSQL or JSON from outside.

PostgreSQL text and jsonb cannot hold U+0000, jsonb has no NaN or Infinity, BIGINT ends at
2^63 - 1, and a lone surrogate is not Unicode at all (it cannot even be encoded as UTF-8).
Anything like that is refused here, at the edge, with a 422 naming the field; nothing is
altered on the way in.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Field

BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)
MAX_JSON_DEPTH = 64

NUL_CHARACTER = "contains a NUL character (U+0000), which cannot be stored"
LONE_SURROGATE = "contains a lone surrogate, which is not valid Unicode"
NOT_FINITE = "contains NaN or Infinity, which JSON cannot carry"
# Most JSON readers (orjson, JavaScript's exact integers aside) stop at 64 bits.
OUT_OF_RANGE = "contains an integer outside the 64-bit range"


def storable_text(value: str) -> str:
    """The value itself, if PostgreSQL can store it and JSON can carry it; else ValueError."""
    if "\x00" in value:
        raise ValueError(NUL_CHARACTER)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(LONE_SURROGATE) from None
    return value


def storable_json(value: Any) -> Any:
    """A JSON value whose every key and string is storable, no deeper than MAX_JSON_DEPTH."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    raise ValueError("has a key that is not a string")
                storable_text(k)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            storable_text(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError(NOT_FINITE)
        elif isinstance(node, int) and not BIGINT_MIN <= node <= BIGINT_MAX:
            raise ValueError(OUT_OF_RANGE)
        elif node is not None and not isinstance(node, bool | int | float):
            raise ValueError(f"contains a {type(node).__name__}, which is not a JSON value")
    return value


# Text that PostgreSQL can store. With bounds, put the check after them (so that stripping
# and length come first): `Annotated[str, StringConstraints(max_length=64), STORABLE]`.
STORABLE = AfterValidator(storable_text)
SafeText = Annotated[str, STORABLE]


JsonObject = Annotated[dict[str, Any], AfterValidator(storable_json)]
# Finite floats only: NaN and Infinity are neither JSON nor comparable.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# Row ids (BIGINT identity columns, always positive).
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
# The same, in a route's path: /projects/{project_id} past BIGINT is a 422 naming it.
PathId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


def _iso_time(value: Any) -> Any:
    # Pydantic would also read 0.5 or "1700000000" as seconds since 1970: only ISO 8601 here.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]


def json_safe(value: Any) -> Any:
    """`value` made encodable for an error body: lone surrogates shown as \\udXXX text and
    non-finite floats as words. Only for describing bad input back, never for storing it."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # "NaN", "Infinity", "-Infinity"
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return json_safe(str(value))
