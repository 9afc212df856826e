"""File writers: JSONL (one orjson line per row) and Parquet (row groups), to any binary sink.

Both are deterministic: the same rows in the same order give the same bytes (row groups close
after a fixed number of rows, and nothing time-dependent is written into a file).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from app.exports.columns import arrow_schema
from app.exports.schemas import Format, Schema, Style

Row = dict[str, Any]
ROW_GROUP_ROWS = 10_000


class BinarySink(Protocol):
    def write(self, data: bytes, /) -> Any: ...


class HashingSink:
    """Passes bytes on to a file while counting them and hashing them (sha256)."""

    def __init__(self, target: BinarySink) -> None:
        self.target = target
        self.bytes = 0
        self._sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.target.write(data)
        self._sha.update(data)
        self.bytes += len(data)
        return len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class ChunkSink:
    """Collects what was written until the HTTP response takes it (`drain`)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class RowWriter(Protocol):
    def write(self, rows: list[Row]) -> None: ...
    def close(self) -> None: ...


class JsonlWriter:
    def __init__(self, sink: BinarySink) -> None:
        self.sink = sink

    def write(self, rows: list[Row]) -> None:
        if rows:
            dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
            self.sink.write(b"".join([dumps(r, option=opt) for r in rows]))

    def close(self) -> None:
        pass


class _FileAdapter:
    """The file object pyarrow writes Parquet through (it wants close, closed and flush too)."""

    def __init__(self, sink: BinarySink) -> None:
        self.sink = sink
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sink.write(chunk)
        return len(chunk)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class ParquetWriter:
    """Rows become Arrow data a batch at a time; a row group is written every ROW_GROUP_ROWS.

    Only Arrow buffers (compact) wait for the next row group, never Python rows; groups are cut
    at fixed row counts, so the same rows always give the same file.
    """

    def __init__(self, sink: BinarySink, schema: Any, row_group_rows: int | None = None) -> None:
        self.schema = schema
        self.row_group_rows = row_group_rows or ROW_GROUP_ROWS
        self._pending: list[Any] = []  # pyarrow.RecordBatch
        self._pending_rows = 0
        self._writer = pq.ParquetWriter(_FileAdapter(sink), schema, compression="zstd")

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        self._pending.append(pa.RecordBatch.from_pylist(rows, schema=self.schema))
        self._pending_rows += len(rows)
        while self._pending_rows >= self.row_group_rows:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table.slice(0, self.row_group_rows))
            rest = table.slice(self.row_group_rows)
            self._pending = rest.to_batches()
            self._pending_rows = rest.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._writer.write_table(pa.Table.from_batches(self._pending, schema=self.schema))
        self._pending = []
        self._writer.close()


def make_writer(fmt: Format, schema: Schema, style: Style, sink: BinarySink) -> RowWriter:
    if fmt is Format.parquet:
        return ParquetWriter(sink, arrow_schema(schema, style))
    return JsonlWriter(sink)


MEDIA_TYPES = {
    Format.jsonl: "application/x-ndjson",
    Format.parquet: "application/vnd.apache.parquet",
}
