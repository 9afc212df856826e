"""One imported row, as JSON, JSONL or Parquet carry it, and items as the API lists them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.validation import STORABLE, JsonObject

# Text and metadata are checked by app.validation: a row that PostgreSQL could not store is
# rejected with its row number here, not as a database error at insert time.
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=256), STORABLE]


# How many responses an item of each kind compares.
RESPONSE_COUNT = {"pairwise": (2, 2), "ranking": (2, 16), "span": (1, 1), "critique": (1, 1)}


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ExternalId | None = None
    text: Annotated[str, StringConstraints(min_length=1, max_length=200_000), STORABLE]
    model: Annotated[str, StringConstraints(max_length=256), STORABLE] | None = None


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId | None = None
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=200_000), STORABLE]
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
