"""Annotations: one judgement of one item, by a human annotator or an AI judge."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class AnnotationSource(StrEnum):
    """Who made an annotation: a human annotator (user_id) or an AI judge (judge_id)."""

    human = "human"
    ai = "ai"


class Annotation(CreatedAt, Base):
    __tablename__ = "annotations"
    __table_args__ = (
        enum_check("source", AnnotationSource),
        CheckConstraint(
            "(source = 'human' AND user_id IS NOT NULL)"
            " OR (source = 'ai' AND judge_id IS NOT NULL)",
            name="author",
        ),
        # Submit is idempotent: at most one annotation per assignment ...
        UniqueConstraint("assignment_id"),
        # ... and per client-generated submission id (the browser's offline outbox key).
        UniqueConstraint("user_id", "client_submission_id"),
        Index("ix_annotations_item_id", "item_id"),
        Index("ix_annotations_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL")
    )
    source: Mapped[AnnotationSource] = mapped_column(EnumText(AnnotationSource))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The judge of an AI vote (app/judges): disabled, never deleted, while it has votes.
    judge_id: Mapped[int | None] = mapped_column(ForeignKey("judges.id", ondelete="RESTRICT"))
    # Stored resolved to response ids (see annotations/payloads.py), never as screen positions.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    schema_version: Mapped[int] = mapped_column(SmallInteger)
    shown_order: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    time_spent_ms: Mapped[int | None] = mapped_column(Integer)
    client_submission_id: Mapped[str | None] = mapped_column(Text)
    # A late submit whose slot was retaken: kept, but not counted toward overlap.
    over_quota: Mapped[bool] = mapped_column(Boolean, server_default="false")
    gold_score: Mapped[float | None] = mapped_column(Float)
