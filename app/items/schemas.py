"""One imported row, as JSON, JSONL or Parquet carry it, and items as the API lists them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# PostgreSQL text and jsonb cannot hold U+0000, and jsonb has no NaN or Infinity: such rows must
# be rejected with their row number here, not fail as a database error at insert time.
MAX_JSON_DEPTH = 64


def _storable_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character (U+0000), which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone surrogate, which is not valid Unicode") from None
    return value


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            for k, v in node.items():
                _storable_text(k)
                stack.append((v, depth + 1))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
        elif isinstance(node, str):
            _storable_text(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise ValueError("contains NaN or Infinity, which JSON cannot carry")
        elif node is not None and not isinstance(node, int | float):
            raise ValueError(f"contains a {type(node).__name__}, which is not a JSON value")
    return value


Text = Annotated[str, AfterValidator(_storable_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_storable_json)]
ExternalId = Annotated[Text, StringConstraints(min_length=1, max_length=256)]

# How many responses an item of each kind compares.
RESPONSE_COUNT = {"pairwise": (2, 2), "ranking": (2, 16), "span": (1, 1), "critique": (1, 1)}


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ExternalId | None = None
    text: Annotated[Text, StringConstraints(min_length=1, max_length=200_000)]
    model: Annotated[Text, StringConstraints(max_length=256)] | None = None


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId | None = None
    prompt: Annotated[Text, StringConstraints(min_length=1, max_length=200_000)]
    responses: Annotated[list[ResponseIn], Field(min_length=1, max_length=16)]
    metadata: JsonObject = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    is_gold: bool | None = None
    gold_answer: JsonObject | None = None

    @model_validator(mode="after")
    def _gold(self) -> ItemIn:
        if self.is_gold is None:
            self.is_gold = self.gold_answer is not None
        if self.is_gold and self.gold_answer is None:
            raise ValueError("a gold item needs a gold_answer to score annotators against")
        if not self.is_gold and self.gold_answer is not None:
            raise ValueError("gold_answer is given but is_gold is false")
        ids = [r.id for r in self.responses if r.id is not None]
        if len(set(ids)) != len(ids):
            raise ValueError("response ids must be unique within an item")
        return self


class ResponseOut(BaseModel):
    id: int
    external_id: str | None
    text: str
    model: str | None


class ItemOut(BaseModel):
    id: int
    external_id: str | None
    prompt: str
    metadata: dict[str, Any]
    priority: int
    is_gold: bool
    gold_answer: dict[str, Any] | None
    responses: list[ResponseOut]
    created_at: datetime


class ImportResult(BaseModel):
    created: int
    skipped: int


class ImportQueued(BaseModel):
    job_id: int
    status: str = "queued"
