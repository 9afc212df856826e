"""Training runs as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.registry.schemas import LineageStep
from app.training.runs.kinds import RunKind
from app.validation import Id, JsonObject


class RunCreate(BaseModel):
    """Start a run on a finished snapshot (`export_id`, also accepted as `snapshot_id`) or on a
    project (`project_id`; a snapshot is made first, with the `export` options)."""

    model_config = ConfigDict(extra="forbid")

    kind: RunKind
    project_id: Id | None = None
    export_id: Id | None = Field(None, validation_alias=AliasChoices("export_id", "snapshot_id"))
    # Export options (schema and filters, as POST .../exports takes them); with project_id only.
    # The schema defaults to what the kind trains on for the project's kind.
    export: JsonObject | None = None
    # Registry versions: the model to train (or, for best_of_n, the policy to sample) and the
    # reward model that scores samples (best_of_n, expert_iteration; optional for dpo and sft,
    # whose evaluation then reports the win rate against the parent by it).
    base_model_id: Id
    reward_model_id: Id | None = None
    # SFT on samples (`config.source: "samples"`): a succeeded best_of_n or expert_iteration
    # run whose kept samples are the targets; instead of project_id / export_id.
    source_run_id: Id | None = None
    # The kind's config (README "Configs") without model paths: those come from the registry.
    config: JsonObject = Field(default_factory=dict)


class RunQueued(BaseModel):
    id: int
    job_id: int
    export_id: int
    status: str = "queued"


class Artifact(BaseModel):
    path: str  # relative to the data directory
    sha256: str  # of run.json, which lists every file's sha256
    files: dict[str, Any]


class RunLineage(BaseModel):
    """Everything the run depended on and what it made."""

    snapshot: dict[str, Any]  # export id, sha256, highest annotation id, schema, options
    base_model: LineageStep
    reward_model: LineageStep | None
    model_version_id: int | None  # the version this run registered
    # The base model's own ancestors, parent first.
    base_lineage: list[LineageStep]


class RunOut(BaseModel):
    id: int
    kind: RunKind
    status: str  # the job's: queued, running, succeeded, failed, cancelled
    project_id: int
    export_id: int
    job_id: int | None
    base_model_id: int
    reward_model_id: int | None
    source_run_id: int | None
    config: dict[str, Any]
    progress: float
    progress_detail: dict[str, Any] | None
    error: str | None
    queue: str | None
    attempts: int
    metrics: dict[str, Any] | None
    artifact: Artifact | None
    model_version_id: int | None
    lineage: RunLineage
    created_by: int | None
    created_at: datetime
    finished_at: datetime | None
