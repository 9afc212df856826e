"""Export options (schema, format, filters) as the API, the CLI and the jobs table carry them."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

from app.projects.rules import TaskKind
from app.validation import STORABLE, FiniteFloat, Id, IsoTime, SafeText, storable_json


class Schema(StrEnum):
    preference = "preference"
    ranking = "ranking"
    spans = "spans"
    critique = "critique"
    unpaired = "unpaired"
    raw = "raw"


class Format(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"


class Style(StrEnum):
    standard = "standard"
    conversational = "conversational"


class Pairs(StrEnum):
    all = "all"
    adjacent = "adjacent"
    best_vs_rest = "best_vs_rest"


class Aggregate(StrEnum):
    consensus = "consensus"  # majority (pairwise), Borda (ranking), mean rating, span overlap
    none = "none"  # one row per annotation
    # Pairwise preference: each item's Dawid-Skene label (annotators weighted by their
    # estimated confusion); computed by the snapshot job only (crowd-kit is worker-side).
    dawid_skene = "dawid_skene"


class Source(StrEnum):
    human = "human"
    ai = "ai"
    all = "all"


class Gold(StrEnum):
    exclude = "exclude"
    include = "include"
    only = "only"


# Which project kinds each schema can be built from.
SCHEMA_KINDS: dict[Schema, tuple[TaskKind, ...]] = {
    Schema.preference: (TaskKind.pairwise, TaskKind.ranking),
    Schema.ranking: (TaskKind.ranking,),
    Schema.spans: (TaskKind.span,),
    Schema.critique: (TaskKind.critique,),
    Schema.unpaired: (TaskKind.pairwise, TaskKind.ranking, TaskKind.critique, TaskKind.span),
    Schema.raw: (TaskKind.pairwise, TaskKind.ranking, TaskKind.span, TaskKind.critique),
}
# Options that only mean something for some schemas: setting them elsewhere is a 422, not a no-op.
ONLY_FOR: dict[str, tuple[Schema, ...]] = {
    "style": (Schema.preference, Schema.unpaired),
    "pairs": (Schema.preference,),
    "aspect": (Schema.preference, Schema.unpaired),
    "rating_threshold": (Schema.unpaired,),
    "span_threshold": (Schema.spans,),
    "aggregate": (
        Schema.preference,
        Schema.unpaired,
        Schema.spans,
        Schema.ranking,
        Schema.critique,
    ),
    "min_agreement": (Schema.preference, Schema.unpaired, Schema.spans, Schema.ranking),
}


def _split_commas(value: Any) -> Any:
    """`?annotator_ids=1,2&annotator_ids=3` and `[1, 2, 3]` both mean [1, 2, 3]."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    out: list[Any] = []
    for v in value:
        if isinstance(v, str):
            out.extend(p.strip() for p in v.split(",") if p.strip())
        else:
            out.append(v)
    return out


Ids = Annotated[list[Id], BeforeValidator(_split_commas)]


class _Options(BaseModel):
    """Everything but the metadata filter, whose shape differs between query string and body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    row_schema: Schema = Field(Schema.preference, alias="schema")
    format: Format = Format.jsonl
    style: Style = Style.standard
    pairs: Pairs = Pairs.all
    aggregate: Aggregate = Aggregate.consensus
    aspect: Annotated[str, Field(min_length=1, max_length=64), STORABLE] | None = None
    rating_threshold: Annotated[FiniteFloat, Field(ge=1, le=7)] = 4.0
    span_threshold: Annotated[FiniteFloat, Field(gt=0, le=1)] = 0.5
    source: Source = Source.all
    min_agreement: Annotated[FiniteFloat, Field(ge=0, le=1)] = 0.0
    min_votes: Annotated[int, Field(ge=1, le=10_000)] = 1
    gold: Gold = Gold.exclude
    # Items that compare two policies (a loop's human evaluation): their labels measure a
    # policy and never train one, so they are left out unless asked for.
    eval_items: Gold = Gold.exclude
    annotator_ids: Ids = Field(default_factory=list)
    judge_ids: Ids = Field(default_factory=list)
    created_after: IsoTime | None = None
    created_before: IsoTime | None = None
    max_annotation_id: Id | None = None

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        # A time without a zone is read as UTC, the zone every exported timestamp is written in.
        if v is not None and v.tzinfo is None:
            return v.replace(tzinfo=UTC)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> _Options:
        for name, schemas in ONLY_FOR.items():
            # A value other than the default, for a schema it cannot change, is a mistake.
            changed = getattr(self, name) != type(self).model_fields[name].default
            if changed and self.row_schema not in schemas:
                allowed = ", ".join(s.value for s in schemas)
                raise ValueError(f"{name} applies to schema {allowed}, not {self.row_schema.value}")
        if self.created_after and self.created_before and self.created_after >= self.created_before:
            raise ValueError("created_after must be earlier than created_before")
        if self.source is Source.human and self.judge_ids:
            raise ValueError("judge_ids select AI votes, but source=human leaves them out")
        if self.source is Source.ai and self.annotator_ids:
            raise ValueError("annotator_ids select human votes, but source=ai leaves them out")
        return self


# Keys and values are compared with the items' jsonb metadata: storable, finite, not too deep.
MetadataFilter = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=256)], JsonValue],
    AfterValidator(storable_json),
]


class ExportOptions(_Options):
    """Options as a JSON body (POST), the CLI and the stored export carry them."""

    metadata: MetadataFilter = Field(default_factory=dict)

    def stored(self) -> dict[str, Any]:
        """JSON-ready form, by the API's names (`schema`), for the exports table and manifest."""
        return self.model_dump(mode="json", by_alias=True)


def _scalar(raw: str) -> JsonValue:
    """`lang=en` is the string "en"; `n=3`, `ok=true` and `x=null` are JSON; `n="3"` a string."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    return value if not isinstance(value, dict | list) else raw


class ExportQuery(_Options):
    """Options as query parameters (GET): `metadata=key=value`, repeated for several keys."""

    metadata: list[SafeText] = Field(default_factory=list)

    @field_validator("metadata")
    @classmethod
    def _pairs(cls, v: list[str]) -> list[str]:
        for entry in v:
            key, eq, _ = entry.partition("=")
            if not eq or not key:
                raise ValueError(f"metadata filter {entry!r} must look like key=value")
        return v

    def to_options(self) -> ExportOptions:
        meta: dict[str, JsonValue] = {}
        for entry in self.metadata:
            key, _, value = entry.partition("=")
            meta[key] = _scalar(value)
        fields = self.model_dump(by_alias=True, exclude={"metadata"}, exclude_unset=True)
        return ExportOptions.model_validate({**fields, "metadata": meta})


class ExportQueued(BaseModel):
    job_id: int
    export_id: int
    status: str = "queued"


class ExportOut(BaseModel):
    id: int
    project_id: int
    job_id: int | None
    status: str
    options: dict[str, Any]
    file_name: str
    rows: int | None
    bytes: int | None
    sha256: str | None
    created_at: datetime
    finished_at: datetime | None
    manifest: dict[str, Any] | None
    error: str | None = None


class ExportPreview(BaseModel):
    """GET /export/preview: what an export with these options would hold now."""

    rows: int
    items: int
    items_with_votes: int
    votes: int
    excluded: dict[str, int]
    empty_reason: str | None
