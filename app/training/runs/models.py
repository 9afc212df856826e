"""Training runs: what was asked (kind, snapshot, models, config) and what came out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, enum_check
from app.training.runs.kinds import RunKind


class TrainingRun(CreatedAt, Base):
    __tablename__ = "training_runs"
    __table_args__ = (
        enum_check("kind", RunKind),
        Index("ix_training_runs_project_id_id", "project_id", "id"),
        Index("ix_training_runs_model_version_id", "model_version_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # The frozen snapshot it trains on (made by this run's job when none was given). NO ACTION:
    # deleting that export alone is refused (exports.service), deleting the project removes both.
    export_id: Mapped[int] = mapped_column(ForeignKey("exports.id"))
    # The job that trains; its status is the run's status.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    base_model_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="RESTRICT"))
    reward_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    # SFT on samples: the best_of_n or expert_iteration run whose kept samples it trains on
    # (its artifacts folder is the input; export_id is that run's snapshot).
    source_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("training_runs.id", ondelete="RESTRICT")
    )
    # The config as given (model paths come from the registry when the job starts).
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set together with the job's `succeeded`: metrics, the artifacts folder (relative to the
    # data directory; storage area "runs"), its files with sha256, and the registered version.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    path: Mapped[str | None] = mapped_column(Text)
    files: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    artifact_sha256: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
