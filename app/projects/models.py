"""Projects (one task kind each) and who may work in them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check
from app.projects.rules import TaskKind as TaskKind  # re-exported: its former home
from app.projects.rules import TaskRules


class Project(CreatedAt, Base):
    __tablename__ = "projects"
    __table_args__ = (
        enum_check("kind", TaskKind),
        CheckConstraint("overlap >= 1", name="overlap_positive"),
        CheckConstraint("lease_seconds >= 10", name="lease_seconds_min"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[TaskKind] = mapped_column(EnumText(TaskKind))
    guidelines: Mapped[str] = mapped_column(Text, server_default="")
    overlap: Mapped[int] = mapped_column(Integer, server_default="1")
    span_labels: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    aspects: Mapped[list[str]] = mapped_column(JSONB, server_default="[]")
    allow_tie: Mapped[bool] = mapped_column(Boolean, server_default="true")
    lease_seconds: Mapped[int] = mapped_column(Integer, server_default="900")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    # Archived projects are hidden from annotators and closed to new tasks; their data stays
    # for export, and unarchiving reopens them.
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def rules(self) -> TaskRules:
        return TaskRules(
            project_id=self.id,
            kind=TaskKind(self.kind),
            span_labels=tuple(self.span_labels),
            aspects=tuple(self.aspects),
            allow_tie=self.allow_tie,
            lease_seconds=self.lease_seconds,
        )


class ProjectMember(CreatedAt, Base):
    __tablename__ = "project_members"
    __table_args__ = (Index("ix_project_members_user_id", "user_id"),)

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
