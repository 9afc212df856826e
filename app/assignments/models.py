"""Assignments: an annotator's lease on one item, with the order its responses were shown in."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, EnumText, enum_check


class AssignmentStatus(StrEnum):
    leased = "leased"
    submitted = "submitted"
    skipped = "skipped"
    expired = "expired"


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = (
        # One row per (item, annotator): the database itself rules out serving an item twice.
        UniqueConstraint("item_id", "user_id"),
        enum_check("status", AssignmentStatus),
        Index(
            "ix_assignments_live",
            "project_id",
            "expires_at",
            postgresql_where=text("status = 'leased'"),
        ),
        Index(
            "ix_assignments_user_live",
            "user_id",
            "project_id",
            postgresql_where=text("status = 'leased'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[AssignmentStatus] = mapped_column(EnumText(AssignmentStatus))
    shown_order: Mapped[list[int]] = mapped_column(ARRAY(BigInteger))
    leased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    skip_reason: Mapped[str | None] = mapped_column(Text)
    # Autosaved work in progress (the browser workspace writes it); never counted as an answer.
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
