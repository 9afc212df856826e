"""Prompts out of an uploaded file: JSON, JSONL, CSV or plain text, with errors that name the line.

Every format yields the same thing, a list of prompt strings, or raises `Invalid` whose
message starts with where the problem is (`line 7: ...`, `item 3: ...`) so that a user can
fix the file. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from app.errors import Invalid
from app.strictbody import DuplicateKey, reject_duplicates

FileFormat = Literal["json", "jsonl", "csv", "text"]
FILE_FORMATS: tuple[FileFormat, ...] = ("json", "jsonl", "csv", "text")
MAX_PROMPTS = 100_000
MAX_PROMPT_CHARS = 100_000
MAX_FILE_BYTES = 16 * 1024 * 1024
UTF8_BOM = "\ufeff"
_EXTENSIONS: dict[str, FileFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "text",
    ".text": "text",
}


def format_of(data: str, filename: str | None) -> FileFormat:
    """The file's format by its extension, else by its first character: `[` JSON, `{` JSONL,
    anything else plain text (a CSV needs its .csv name or an explicit `format`)."""
    if filename:
        for ext, fmt in _EXTENSIONS.items():
            if filename.lower().endswith(ext):
                return fmt
    head = data.lstrip()[:1]
    return "json" if head == "[" else "jsonl" if head == "{" else "text"


def check_prompt(value: Any, where: str) -> str:
    """A prompt as stored: a non-blank string PostgreSQL can hold, at most MAX_PROMPT_CHARS."""
    if not isinstance(value, str):
        raise Invalid(f"{where}: the prompt must be text, not {type(value).__name__}.")
    if not value.strip():
        raise Invalid(f"{where}: the prompt is empty.")
    if len(value) > MAX_PROMPT_CHARS:
        raise Invalid(f"{where}: the prompt is longer than {MAX_PROMPT_CHARS} characters.")
    if "\x00" in value:
        raise Invalid(f"{where}: the prompt contains a NUL character, which cannot be stored.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{where}: the prompt contains a lone surrogate.") from None
    return value


def _more(out: list[str]) -> None:
    if len(out) >= MAX_PROMPTS:
        raise Invalid(f"A prompt set holds at most {MAX_PROMPTS} prompts.")


def decode(raw: bytes) -> str:
    """UTF-8 text without a byte order mark; a bad byte is reported with its line."""
    if len(raw) > MAX_FILE_BYTES:
        raise Invalid(f"The file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise Invalid(f"line {line}: not valid UTF-8 (byte {exc.start + 1}).") from None
    return text.removeprefix(UTF8_BOM)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=reject_duplicates, parse_constant=_no_constants)


def _from_object(row: Any, where: str) -> str:
    if isinstance(row, str):
        return check_prompt(row, where)
    if not isinstance(row, dict):
        raise Invalid(f"{where}: expected an object with a `prompt` field or a string.")
    if "prompt" not in row:
        keys = ", ".join(sorted(map(str, row))[:10]) or "none"
        raise Invalid(f"{where}: no `prompt` field (fields: {keys}).")
    return check_prompt(row["prompt"], where)


def _json(text: str) -> list[str]:
    try:
        data = _loads(text)
    except DuplicateKey as exc:
        raise Invalid(f"The JSON repeats the key {exc.key!r} within one object.") from None
    except RecursionError:
        raise Invalid("The JSON is nested too deeply.") from None
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        raise Invalid(f"{where}not valid JSON ({exc}).") from None
    if not isinstance(data, list):
        raise Invalid("A JSON prompt file is an array of strings or of objects with `prompt`.")
    out: list[str] = []
    for n, row in enumerate(data, start=1):
        _more(out)
        out.append(_from_object(row, f"item {n}"))
    return out


def _jsonl(text: str) -> list[str]:
    out: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        _more(out)
        try:
            row = _loads(line)
        except DuplicateKey as exc:
            raise Invalid(f"line {n}: the key {exc.key!r} appears twice.") from None
        except (ValueError, RecursionError) as exc:
            raise Invalid(f"line {n}: not valid JSON ({exc}).") from None
        if not isinstance(row, dict):
            raise Invalid(f"line {n}: expected a JSON object with a `prompt` field.")
        out.append(_from_object(row, f"line {n}"))
    return out


def _csv(text: str) -> list[str]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    out: list[str] = []
    try:
        header = next(reader, None)
        if header is None:
            raise Invalid("The CSV file is empty.")
        names = [h.strip() for h in header]
        if "prompt" not in names:
            shown = ", ".join(names[:10]) or "none"
            raise Invalid(f"line 1: the CSV header has no `prompt` column (columns: {shown}).")
        column = names.index("prompt")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            _more(out)
            # line_num is the line where the record ends (a quoted prompt may span lines).
            where = f"line {reader.line_num}"
            if column >= len(row):
                raise Invalid(f"{where}: the row has no `prompt` column ({len(row)} cells).")
            out.append(check_prompt(row[column], where))
    except csv.Error as exc:
        raise Invalid(f"line {reader.line_num}: not valid CSV ({exc}).") from None
    return out


def _text(text: str) -> list[str]:
    out: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # blank lines separate nothing; skip them
        _more(out)
        out.append(check_prompt(line, f"line {n}"))
    return out


def read_prompts(
    raw: bytes, fmt: FileFormat | None, filename: str | None
) -> tuple[list[str], FileFormat]:
    """The prompts of an uploaded file and the format they were read as."""
    text = decode(raw)
    chosen = fmt or format_of(text, filename)
    prompts = {"json": _json, "jsonl": _jsonl, "csv": _csv, "text": _text}[chosen](text)
    if not prompts:
        raise Invalid("The file holds no prompts.")
    return prompts, chosen


def text_prompts(text: str) -> list[str]:
    """The page's text box: one prompt per line, blank lines skipped."""
    return _text(text.removeprefix(UTF8_BOM))
