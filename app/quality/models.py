"""Quality state kept in the database: the cached stats snapshot, per-project quality settings,
annotator pauses (gold checks) and adjudicated labels."""

from __future__ import annotations

from datetime import datetime
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
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ProjectStats(Base):
    """One row per project: the last computed statistics and the refresh bookkeeping.

    The stats job writes `payload` whole; the API and the dashboard only read it, so a request
    costs one primary-key lookup whatever the project's size.
    """

    __tablename__ = "project_stats"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The newest annotation the snapshot saw: a newer one makes the snapshot stale.
    last_annotation_id: Mapped[int] = mapped_column(BigInteger, server_default="0")
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # Debounce: a refresh is enqueued at most once per interval (see service.request_refresh).
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(BigInteger)


class QualitySettings(Base):
    """Per-project thresholds for gold checks and the review queue (defaults when no row)."""

    __tablename__ = "quality_settings"
    __table_args__ = (
        CheckConstraint("gold_warn_below >= 0 AND gold_warn_below <= 1", name="warn_range"),
        CheckConstraint(
            "gold_pause_below IS NULL OR (gold_pause_below >= 0 AND gold_pause_below <= 1)",
            name="pause_range",
        ),
        CheckConstraint("gold_min_answers >= 1", name="min_answers_positive"),
        CheckConstraint("review_below >= 0 AND review_below <= 1", name="review_range"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    gold_warn_below: Mapped[float] = mapped_column(Float, server_default="0.7")
    # None: never pause automatically.
    gold_pause_below: Mapped[float | None] = mapped_column(Float)
    gold_min_answers: Mapped[int] = mapped_column(Integer, server_default="10")
    # Items whose top label has less than this share of the votes go to the review queue.
    review_below: Mapped[float] = mapped_column(Float, server_default="0.6")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class AnnotatorPause(Base):
    """An annotator paused in a project (served no tasks) until a researcher lifts it."""

    __tablename__ = "annotator_pauses"
    __table_args__ = (
        # At most one pause in force per annotator and project.
        Index(
            "ux_annotator_pauses_active",
            "project_id",
            "user_id",
            unique=True,
            postgresql_where=text("lifted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    accuracy: Mapped[float | None] = mapped_column(Float)
    paused_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # None: paused automatically by the gold check.
    paused_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lifted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Adjudication(Base):
    """The final label of an item, picked by a reviewer; it wins aggregation in exports."""

    __tablename__ = "adjudications"
    __table_args__ = (Index("ix_adjudications_project_id", "project_id"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    # Resolved to response ids like an annotation's payload: {"preferred": id|null} (pairwise),
    # {"order": [ids]} (ranking).
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text, server_default="")
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ReviewCandidate(Base):
    """An item whose human votes disagree, as of the last stats snapshot: the review queue
    reads these rows (indexed by share) instead of grouping every vote on each request."""

    __tablename__ = "review_candidates"
    __table_args__ = (Index("ix_review_candidates_queue", "project_id", "top_share", "item_id"),)

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    votes: Mapped[int] = mapped_column(Integer)
    top_share: Mapped[float] = mapped_column(Float)
    # Answer -> votes: keys are response ids ("tie" too, pairwise; ranking: the first ranked).
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
