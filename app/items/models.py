"""Items (the instances to judge) and the responses they compare."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class ItemRouting(StrEnum):
    """Where routing sent an item: held (unrouted: never served) or the decision it got."""

    held = "held"
    human = "human"
    ai = "ai"
    both = "both"


class Item(CreatedAt, Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id"),
        # The assignment engine's scan: open items of a project, best first.
        Index(
            "ix_items_open",
            "project_id",
            text("priority DESC"),
            text("remaining DESC"),
            "id",
            postgresql_where=text("remaining > 0"),
        ),
        # Exports walk a project's items in id order.
        Index("ix_items_project_id_id", "project_id", "id"),
        enum_check("routing", ItemRouting),
        # Route jobs scan a project's held items.
        Index("ix_items_held", "project_id", "id", postgresql_where=text("routing = 'held'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    # "metadata" is reserved on declarative classes; the column keeps the API's name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default="{}")
    priority: Mapped[int] = mapped_column(Integer, server_default="0")
    is_gold: Mapped[bool] = mapped_column(Boolean, server_default="false")
    gold_answer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # Human slots still open: overlap - live leases - counted human annotations. It goes
    # negative when overlap is lowered below what an item already has, and stays exact.
    remaining: Mapped[int] = mapped_column(Integer)
    # NULL in projects without routing. Under routing an item is imported `held` with
    # remaining = 0 (its human target is 0 until routed); a route job sets the decision and,
    # for human and both, adds the human overlap to remaining: the engine's invariant holds
    # with the target moving from 0 to the overlap.
    routing: Mapped[ItemRouting | None] = mapped_column(EnumText(ItemRouting))


class Response(Base):
    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("item_id", "position"),
        Index(
            "ix_responses_model_version_id",
            "model_version_id",
            postgresql_where=text("model_version_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(SmallInteger)  # order in the imported row
    external_id: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # The model or checkpoint that produced this response, for lineage.
    model: Mapped[str | None] = mapped_column(Text)
    lineage: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # The registry version that generated it (POST .../generate): a label on this response
    # traces to that checkpoint, and the version cannot be deleted while responses name it.
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
