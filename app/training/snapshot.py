"""Read an export snapshot folder (data file + manifest.json) into an Arrow table with exact types.

The folder is what `app.exports` writes: the data file is checked against the manifest's
sha256 so that a run trains on exactly the snapshot it names, and JSONL is parsed against the
export's own Arrow schema (a column whose first rows are null still gets its real type).
A run's held-out split is by item: every row of an item (all pairs of a ranking, all votes of
`aggregate=none`) lands on the same side.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.exports.columns import arrow_schema
from app.exports.schemas import Schema, Style
from app.training.errors import TrainingInputError

MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"  # what best_of_n and expert_iteration write: SFT's `samples` input


@dataclass(frozen=True, slots=True)
class Snapshot:
    folder: Path
    manifest: dict[str, Any]
    schema: Schema
    style: Style
    data_file: Path

    def provenance(self) -> dict[str, Any]:
        """What a trained model records about its data (the registry's lineage)."""
        m = self.manifest
        snap = m.get("snapshot") or {}
        return {
            "export_id": m.get("export_id"),
            "project": m.get("project"),
            "schema": self.schema.value,
            "style": self.style.value,
            "options": m.get("options"),
            "file": m.get("file"),
            "highest_annotation_id": snap.get("highest_annotation_id"),
            "taken_at": snap.get("taken_at"),
        }

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The rows, typed by the export schema; `columns` keeps only those."""
        schema = arrow_schema(self.schema, self.style)
        if self.data_file.suffix == ".parquet":
            table = pq.read_table(self.data_file, columns=columns)
        else:
            rows = [orjson.loads(line) for line in self.data_file.read_bytes().splitlines() if line]
            table = pa.Table.from_pylist(rows, schema=schema)
            if columns is not None:
                table = table.select(columns)
        return table


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def open_snapshot(folder: Path | str) -> Snapshot:
    """Check the folder's manifest and data file; raises TrainingInputError naming the problem."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise TrainingInputError(f"{folder} is not an export snapshot: it has no {MANIFEST}.")
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
        schema = Schema(manifest["schema"])
        style = Style((manifest.get("options") or {}).get("style", Style.standard.value))
        file_info = manifest["file"]
        data_file = folder / str(file_info["name"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise TrainingInputError(f"{manifest_path} is not a valid export manifest: {exc}.") from exc
    if data_file.parent != folder or not data_file.is_file():
        raise TrainingInputError(f"the snapshot's data file {data_file.name} is missing.")
    if file_info.get("sha256") and _sha256(data_file) != file_info["sha256"]:
        raise TrainingInputError(
            f"{data_file} does not match the sha256 in its manifest: the snapshot was altered."
        )
    return Snapshot(folder, manifest, schema, style, data_file)


def require_schema(snapshot: Snapshot, kind: str, *allowed: Schema) -> None:
    if snapshot.schema not in allowed:
        names = " or ".join(s.value for s in allowed)
        raise TrainingInputError(
            f"{kind} trains on a {names} export; this snapshot is {snapshot.schema.value}."
        )


def read_samples(folder: Path | str) -> pa.Table:
    """The samples a best_of_n or expert_iteration run kept (`samples.parquet`)."""
    path = Path(folder) / SAMPLES
    if not path.is_file():
        raise TrainingInputError(f"{folder} holds no {SAMPLES} (the output of a best_of_n run).")
    return pq.read_table(path)


def held_out_keys(keys: list[Any], fraction: float, seed: int) -> set[Any]:
    """Which keys (item ids) are held out: a seeded draw of ceil(fraction * n), never all.
    Rows without a key always train."""
    unique = sorted({k for k in keys if k is not None})
    if fraction <= 0 or len(unique) < 2:
        return set()
    k = min(len(unique) - 1, max(1, math.ceil(fraction * len(unique))))
    return set(random.Random(seed).sample(unique, k))


def split_by(table: pa.Table, key: str, fraction: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """(train, held out) with every row of a key on the same side."""
    keys = table.column(key).to_pylist()
    held = held_out_keys(keys, fraction, seed)
    if not held:
        return table, table.slice(0, 0)
    mask = pc.fill_null(pc.is_in(table.column(key), value_set=pa.array(sorted(held))), False)
    return table.filter(pc.invert(mask)), table.filter(mask)


def unique_prompts(rows: list[dict[str, Any]]) -> list[Any]:
    """The distinct prompts of some rows, in first-seen order (text or chat messages)."""
    seen: set[str] = set()
    out = []
    for row in rows:
        key = orjson.dumps(row["prompt"]).decode()
        if key not in seen:
            seen.add(key)
            out.append(row["prompt"])
    return out
