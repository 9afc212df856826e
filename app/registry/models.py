"""Model versions: what a model is, where its files are, and what it came from.

A version is a base model registered from local files, or what a training run produced (its
`training_runs.model_version_id` points here). Lineage is the `parent_id` chain plus, for a
trained version, the run's snapshot, config and metrics, copied here so that the version keeps
them even if the run's rows change. Foreign keys that point at a version RESTRICT deletion: a
version that a child or a run depends on cannot be deleted.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class ModelKind(StrEnum):
    base = "base"
    reward_model = "reward_model"
    policy = "policy"


class ModelVersion(CreatedAt, Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        enum_check("kind", ModelKind),
        Index("ix_model_versions_parent_id", "parent_id"),
        Index("ix_model_versions_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[ModelKind] = mapped_column(EnumText(ModelKind))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    # The project whose labels trained it (None for base models): who may see it.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="RESTRICT"))
    # The export snapshot it was trained on: {export_id, sha256, highest_annotation_id, ...}.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Base models: the absolute path they were registered from (a folder, a .gguf file, or a
    # `package:` path). Trained versions: the artifacts folder relative to the data directory.
    artifact_path: Mapped[str] = mapped_column(Text)
    # sha256 of the weights file (a .gguf) or of run.json / the file list (folders), which
    # names every file's own sha256.
    artifact_sha256: Mapped[str] = mapped_column(Text)
    files: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
