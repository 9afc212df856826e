"""Jobs: the source of truth for background work; Celery messages carry only a job id."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, enum_check, sql_in


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


UNFINISHED = (JobStatus.queued, JobStatus.running)
FINISHED = (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class Job(CreatedAt, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        enum_check("status", JobStatus),
        CheckConstraint("max_attempts >= 1", name="max_attempts"),
        Index(
            "ix_jobs_unfinished", "created_at", postgresql_where=text(sql_in("status", UNFINISHED))
        ),
        Index("ix_jobs_project_id_id", "project_id", "id"),
        Index("ix_jobs_created_by_id", "created_by", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    queue: Mapped[str] = mapped_column(Text, server_default="default")
    status: Mapped[str] = mapped_column(Text, server_default="queued")
    progress: Mapped[float] = mapped_column(Float, server_default="0")
    # The handler's last progress detail (step, loss, counts...), shown to the owner as is.
    progress_detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Claims so far (the fencing token of the current one), and how many of them ended because
    # their worker stopped renewing the claim (killed, out of memory, machine lost).
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    lost_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # The kind's policy, copied at enqueue so that the sweeper needs no code to apply it.
    max_attempts: Mapped[int] = mapped_column(Integer, server_default="3")
    time_limit_s: Mapped[int] = mapped_column(Integer, server_default="3600")
    # The state an `external` handler checkpointed; a later attempt resumes from it.
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the job's current message is due (enqueue, requeue, or the end of a retry's backoff):
    # a queued job long past it lost its message and is sent again.
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # A running claim lasts until locked_until; each heartbeat renews it.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_requested_at is not None


class JobBlob(Base):
    """Input bytes for a job (an uploaded file), kept in Postgres: workers need no shared disk."""

    __tablename__ = "job_blobs"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
