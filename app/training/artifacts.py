"""A run's artifacts folder: safetensors weights, tokenizer, metrics and run.json; never pickles.

Files are written into a hidden sibling folder and renamed into place at the end, so the
artifacts folder either holds a whole run or does not exist; a crash leaves only the partial
sibling, which the next attempt removes. Every file is listed in run.json with its size and
sha256 (what the model registry records), and any file type that could hold a pickle
(.bin, .pt, .pth, .pkl, ...) makes the commit fail instead of being published.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app import __version__
from app.storage import partial_path

RUN_RECORD = "run.json"
METRICS = "metrics.json"
# What an artifacts folder may hold: weights in safetensors, tokenizer and config files as JSON
# or text, sentencepiece models (protobuf), chat templates, tables as Parquet.
ALLOWED_SUFFIXES = frozenset(
    {".safetensors", ".json", ".txt", ".jinja", ".model", ".parquet", ".md", ".tiktoken"}
)


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def library_versions() -> dict[str, str]:
    """Versions of what shaped the weights (recorded for reproduction)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"tandem": __version__}
    for name in ("torch", "transformers", "trl", "peft", "accelerate", "datasets"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


class ArtifactWriter:
    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.tmp = partial_path(out_dir)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)

    def save_model(self, model: Any, tokenizer: Any) -> None:
        """Weights as safetensors (`save_pretrained`), with the tokenizer beside them."""
        model.save_pretrained(str(self.tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(self.tmp))

    def write_json(self, name: str, data: Any) -> None:
        (self.tmp / name).write_bytes(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
        )

    def path(self, name: str) -> Path:
        """Where to write a file of one's own (e.g. a Parquet table)."""
        return self.tmp / name

    def commit(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Check, hash and publish the folder; returns the files as run.json lists them."""
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in self.tmp.rglob("*") if p.is_file()):
            name = path.relative_to(self.tmp).as_posix()
            if path.suffix.lower() not in ALLOWED_SUFFIXES:
                raise RuntimeError(
                    f"refusing to publish {name}: artifacts hold safetensors, JSON and text only"
                )
            _fsync(path)
            files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        full = {
            **record,
            "files": files,
            "versions": library_versions(),
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.write_json(RUN_RECORD, full)
        _fsync(self.tmp / RUN_RECORD)
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)  # an earlier attempt's whole folder: this one replaces it
        self.tmp.rename(self.out_dir)
        _fsync(self.out_dir.parent)
        return files

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
