"""Judges, templates, runs and metrics as the API takes and returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.projects.rules import TaskKind
from app.validation import STORABLE, FiniteFloat, Id, JsonObject

Name = Annotated[str, StringConstraints(min_length=1, max_length=100), STORABLE]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=1000), STORABLE]
TemplateText = Annotated[str, StringConstraints(max_length=50_000), STORABLE]
Money = Annotated[FiniteFloat, Field(ge=0, le=1e9)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Costs(_In):
    per_call: Money = 0.0
    per_1k_input: Money = 0.0
    per_1k_output: Money = 0.0


class JudgeCreate(_In):
    name: Name
    backend: Annotated[str, StringConstraints(min_length=1, max_length=64), STORABLE]
    model: ModelName
    # The backend's parameters plus the judge's own: sampling (temperature, top_p, max_tokens,
    # seed, top_logprobs) and chunk_size (items per backend call).
    params: JsonObject = Field(default_factory=dict)
    costs: Costs = Field(default_factory=Costs)
    enabled: bool = True


class JudgePatch(_In):
    name: Name | None = None
    model: ModelName | None = None
    params: JsonObject | None = None
    costs: Costs | None = None
    enabled: bool | None = None


class JudgeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    backend: str
    model: str
    params: dict[str, Any]
    costs: dict[str, Any]
    enabled: bool
    created_at: datetime


Rule = Literal["tie", "low_confidence"]


class TemplateCreate(_In):
    kind: TaskKind
    system: TemplateText = ""
    user: Annotated[str, StringConstraints(min_length=1, max_length=50_000), STORABLE]
    inconsistent: Rule = "low_confidence"


class TemplatePatch(_In):
    system: TemplateText | None = None
    user: Annotated[str, StringConstraints(min_length=1, max_length=50_000), STORABLE] | None = None
    inconsistent: Rule | None = None


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    version: int
    system: str
    user: str
    inconsistent: str
    used: bool
    created_at: datetime


class JudgeRunCreate(_In):
    judge_id: Id
    template_version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    items: (
        Literal["unjudged", "all"] | Annotated[list[Id], Field(min_length=1, max_length=100_000)]
    ) = "unjudged"


class JudgeRunQueued(BaseModel):
    run_id: int
    job_id: int


class JudgeRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    project_id: int
    judge_id: int
    template_id: int
    template_version: int
    job_id: int | None
    status: str  # the job's: queued | running | succeeded | failed | cancelled
    progress: float
    items: Any
    total: int | None
    done: int
    unparsed: int
    inconsistent: int
    failed: int
    skipped: int
    tokens_in: int
    tokens_out: int
    cost: float
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class TryItem(_In):
    project_id: Id
    item_id: Id
    template_version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
