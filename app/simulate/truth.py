"""A world's truth file: per item, the true order of its responses and how hard it is.

One JSON object per line, kept outside the items (the server never sees it):

    {"external_id": "wab12cd-000001", "kind": "pairwise",
     "order": ["wab12cd-000001-r1", "wab12cd-000001-r0"],      # response ids, best first
     "winner": "wab12cd-000001-r1",                             # pairwise only
     "scores": {"wab12cd-000001-r0": -0.41, "wab12cd-000001-r1": 0.87},  # latent reward
     "difficulty": 0.31, "categories": {"safety": "none", "complexity": "easy"},
     "responses": [{"id": "wab12cd-000001-r0", "model": "simlm-c", "chars": 312,
                    "text_sha256": "…"}, ...]}

Response ids are the ids the items were imported with. `order`, `winner` and `scores` are the
forms the `simulated` judge backend reads (app/inference/simulated.py), so one file serves
judges and annotators. A task shows response texts, not import ids: annotators find each
shown response by the sha256 of its text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from app.errors import Invalid


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class TruthResponse:
    id: str
    model: str | None
    chars: int
    text_sha256: str


@dataclass(frozen=True, slots=True)
class ItemTruth:
    external_id: str
    kind: str
    order: tuple[str, ...]  # response ids, best first
    scores: Mapping[str, float]
    difficulty: float
    categories: Mapping[str, str]
    responses: tuple[TruthResponse, ...]
    _by_digest: dict[str, TruthResponse] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_digest", {r.text_sha256: r for r in self.responses})

    def response_for_text(self, text: str) -> TruthResponse | None:
        return self._by_digest.get(text_digest(text))

    def rank(self) -> dict[str, int]:
        """Response id -> place in the true order (0 is best)."""
        return {rid: n for n, rid in enumerate(self.order)}

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"external_id": self.external_id, "kind": self.kind}
        row["order"] = list(self.order)
        if self.kind == "pairwise":
            row["winner"] = self.order[0]
        row["scores"] = dict(self.scores)
        row["difficulty"] = self.difficulty
        row["categories"] = dict(self.categories)
        row["responses"] = [
            {"id": r.id, "model": r.model, "chars": r.chars, "text_sha256": r.text_sha256}
            for r in self.responses
        ]
        return row

    @classmethod
    def from_json(cls, row: Any, where: str) -> ItemTruth:
        try:
            responses = tuple(
                TruthResponse(
                    id=str(r["id"]),
                    model=r.get("model"),
                    chars=int(r["chars"]),
                    text_sha256=str(r["text_sha256"]),
                )
                for r in row["responses"]
            )
            truth = cls(
                external_id=str(row["external_id"]),
                kind=str(row["kind"]),
                order=tuple(str(x) for x in row["order"]),
                scores={str(k): float(v) for k, v in row["scores"].items()},
                difficulty=float(row["difficulty"]),
                categories={str(k): str(v) for k, v in (row.get("categories") or {}).items()},
                responses=responses,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Invalid(f"{where}: not a truth row ({type(exc).__name__}: {exc}).") from None
        if sorted(truth.order) != sorted(r.id for r in responses):
            raise Invalid(f"{where}: order must list each response id once.")
        if not 0.0 <= truth.difficulty <= 1.0:
            raise Invalid(f"{where}: difficulty must be between 0 and 1.")
        return truth


def write_truth(f: IO[bytes], truths: Iterable[ItemTruth]) -> None:
    for t in truths:
        f.write(orjson.dumps(t.to_json()))
        f.write(b"\n")


def iter_truth(path: Path) -> Iterator[ItemTruth]:
    try:
        f = path.open("rb")
    except OSError as exc:
        raise Invalid(f"Cannot read the truth file {path}: {exc.strerror}.") from None
    with f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"truth file {path}, line {number}"
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise Invalid(f"{where}: {exc}.") from None
            yield ItemTruth.from_json(row, where)


def load_truth(path: Path) -> dict[str, ItemTruth]:
    """external_id -> truth; an empty or repeated-id file is an error."""
    truths: dict[str, ItemTruth] = {}
    for t in iter_truth(path):
        if t.external_id in truths:
            raise Invalid(f"Truth file {path} lists {t.external_id} twice.")
        truths[t.external_id] = t
    if not truths:
        raise Invalid(f"Truth file {path} holds no items.")
    return truths
