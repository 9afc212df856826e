"""Stream rows out of an uploaded file (JSON array, JSONL or Parquet) without loading it whole.

Each reader yields (row_number, row) with 1-based row numbers: the array position, the JSONL
line, or the Parquet row, so that errors can point at the offending row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import IO, Any, Literal

import ijson
import pyarrow as pa
import pyarrow.parquet as pq
from ijson.common import ObjectBuilder

from app.errors import Invalid
from app.items.surrogates import SurrogateGuard
from app.strictbody import DuplicateKey, reject_duplicates
from app.validation import LONE_SURROGATE

Format = Literal["json", "jsonl", "parquet"]
FORMATS: tuple[Format, ...] = ("json", "jsonl", "parquet")
PARQUET_MAGIC = b"PAR1"
MAX_DEPTH = 100  # nesting levels within one row
_OPEN = frozenset({"start_map", "start_array"})
_CLOSE = frozenset({"end_map", "end_array"})
UTF8_BOM = b"\xef\xbb\xbf"


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
    if fmt == "parquet":
        return _parquet(f)
    # Editors on Windows save UTF-8 with a byte order mark; the JSON parsers reject it.
    if f.read(len(UTF8_BOM)) != UTF8_BOM:
        f.seek(0)
    if fmt == "json":
        return _json_array(f)
    return _jsonl(f)


class _RowBuilder(ObjectBuilder):  # type: ignore[misc]
    """ijson's ObjectBuilder, refusing a key that repeats within one object, and able to say
    which field it was building when the parser stopped."""

    last_event = ""

    def event(self, event: str, value: Any) -> None:
        if event == "map_key" and value in self.containers[-1]:
            raise DuplicateKey(value)
        self.last_event = event
        super().event(event, value)

    def where(self) -> str:
        path: list[str] = []
        for parent in self.containers[:-1]:
            # The open child is the newest entry of its parent.
            path.append(
                str(len(parent) - 1) if isinstance(parent, list) else next(reversed(parent))
            )
        if self.containers:
            top = self.containers[-1]
            if isinstance(top, list):
                path.append(str(len(top)))
            elif self.last_event == "map_key":
                path.append(self.key)
        return ".".join(path)


def _json_array(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    # Rows are built from ijson's flat event stream rather than with ijson.items, whose prefix
    # strings grow with nesting: a 200 kB row nested 100k deep took gigabytes.
    guard = SurrogateGuard(f)
    events = ijson.basic_parse(guard, use_float=True)
    n, depth = 0, 0
    builder = _RowBuilder()
    try:
        if next(events, (None, None))[0] != "start_array":
            raise Invalid(
                "A JSON upload must be an array of items ([{...}, ...]); for one object per"
                " line use JSONL."
            )
        for event, value in events:
            if depth == 0:
                if event == "end_array":
                    for _ in events:  # only whitespace may follow; the parser checks
                        pass
                    return
                n += 1
                if event not in _OPEN:
                    yield n, value
                    continue
                builder = _RowBuilder()
            builder.event(event, value)
            if event in _OPEN:
                depth += 1
                if depth > MAX_DEPTH:
                    raise Invalid(f"row {n}: nested more than {MAX_DEPTH} levels deep.", row=n)
            elif event in _CLOSE:
                depth -= 1
                if depth == 0:
                    yield n, builder.value
    except DuplicateKey as exc:
        where = builder.where()
        raise Invalid(
            f"row {n}: {where + ': ' if where else ''}the key {exc.key!r} appears twice.", row=n
        ) from None
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        row = n if depth else n + 1
        where = builder.where() if depth else ""
        at = f"{where}: " if where else ""
        if guard.found is not None:
            raise Invalid(f"row {row}: {at}{LONE_SURROGATE}.", row=row) from None
        reason = _parser_reason(exc)
        raise Invalid(f"row {row}: {at}the JSON array is malformed ({reason}).", row=row) from None
    raise Invalid(f"row {n + 1}: the JSON array is not closed.", row=n + 1)


# yajl's messages, in words for people (its own point at a byte offset of the file).
_PARSER_WORDS = {
    "premature EOF": "the file ends inside the array",
    "unallowed token": "unexpected text where a value, comma or bracket should be",
    "invalid char in json text": "a character that JSON does not allow",
    "invalid bytes in UTF8 string": "text that is not UTF-8",
    "invalid string": "a string that is not valid JSON",
    "trailing garbage": "text after the closing bracket",
}


def _parser_reason(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    if isinstance(exc, UnicodeDecodeError):
        return "text that is not UTF-8"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    for needle, words in _PARSER_WORDS.items():
        if needle in first:
            return words
    return first.removeprefix("parse error: ").removeprefix("lexical error: ").rstrip(".")


def _jsonl(f: IO[bytes]) -> Iterator[tuple[int, Any]]:
    for n, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=reject_duplicates)
        except DuplicateKey as exc:
            raise Invalid(f"row {n}: the key {exc.key!r} appears twice.", row=n) from None
        except json.JSONDecodeError as exc:
            # The file's line, and the column within it: never the parser's offset in the file.
            reason = f"{exc.msg[:1].lower()}{exc.msg[1:]} at column {exc.colno}"
            raise Invalid(f"row {n}: line {n} is not valid JSON ({reason}).", row=n) from None
        except UnicodeDecodeError:
            raise Invalid(f"row {n}: line {n} is not UTF-8 text.", row=n) from None
        except RecursionError:
            raise Invalid(f"row {n}: line {n} is nested too deeply.", row=n) from None
        yield n, row


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
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # timestamp columns inside metadata: JSON has no date type
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
                except (json.JSONDecodeError, RecursionError):
                    raise Invalid(f"row {n}: metadata is a string but not JSON.", row=n) from None
            gold = row.get("gold_answer")
            if isinstance(gold, str):
                try:
                    row["gold_answer"] = json.loads(gold)
                except (json.JSONDecodeError, RecursionError):
                    raise Invalid(
                        f"row {n}: gold_answer is a string but not JSON.", row=n
                    ) from None
            yield n, row
