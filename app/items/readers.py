"""Stream rows out of an uploaded file (JSON array, JSONL or Parquet) without loading it whole.

Each reader yields (row_number, row) with 1-based row numbers: the array position, the JSONL
line, or the Parquet row, so that errors can point at the offending row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, Literal

import ijson
import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import Invalid

Format = Literal["json", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("json", "jsonl", "parquet")
PARQUET_MAGIC = b"PAR1"


def sniff(head: bytes) -> Format:
    """Guess the format from the first bytes of the file."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    if not stripped:
        raise Invalid("The uploaded file is empty.")
    raise Invalid("Cannot tell the file format: expected a JSON array, JSONL or Parquet.")


def read_rows(f: IO[bytes], fmt: Format) -> Iterator[tuple[int, Any]]:
    if fmt == "json":
        return _json_array(f)
    if fmt == "jsonl":
        return _jsonl(f)
    return _parquet(f)


def _json_array(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    n = 0
    try:
        for n, row in enumerate(ijson.items(f, "item", use_float=True), start=1):
            yield n, row
    except ijson.JSONError as exc:
        raise Invalid(f"row {n + 1}: the JSON array is malformed ({exc}).", row=n + 1) from None


def _jsonl(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for n, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Invalid(f"row {n}: line {n} is not valid JSON ({exc}).", row=n) from None


def _plain(value: Any) -> Any:
    """Parquet map columns arrive as lists of (key, value) pairs; JSON strings stay strings."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, tuple) and len(v) == 2 for v in value)
    ):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _parquet(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowInvalid, OSError) as exc:
        raise Invalid(f"The file is not readable as Parquet ({exc}).") from None
    n = 0
    for batch in pf.iter_batches(batch_size=1000):
        for row in batch.to_pylist():
            n += 1
            row = {k: _plain(v) for k, v in row.items() if v is not None}
            meta = row.get("metadata")
            if isinstance(meta, str):
                # Parquet has no free-form object type: metadata may come as a JSON string.
                try:
                    row["metadata"] = json.loads(meta)
                except json.JSONDecodeError:
                    raise Invalid(f"row {n}: metadata is a string but not JSON.", row=n) from None
            gold = row.get("gold_answer")
            if isinstance(gold, str):
                try:
                    row["gold_answer"] = json.loads(gold)
                except json.JSONDecodeError:
                    raise Invalid(
                        f"row {n}: gold_answer is a string but not JSON.", row=n
                    ) from None
            yield n, row
