"""A prompt set: a named, immutable list of prompts in a project.

The prompts live in one JSONB array: a set is written once and read whole (a generation job
takes all of it or a seeded sample), so rows per prompt would buy nothing. `sha256` is of the
canonical JSON of the list, so two sets with the same prompts in the same order hash alike.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class PromptSource(StrEnum):
    list = "list"  # a JSON list in the request body
    json = "json"  # an uploaded JSON array (strings, or objects with `prompt`)
    jsonl = "jsonl"  # an uploaded JSONL file, one object with `prompt` per line
    csv = "csv"  # an uploaded CSV file with a `prompt` column
    text = "text"  # an uploaded plain-text file (or the page's text box), one prompt per line


class PromptSet(CreatedAt, Base):
    __tablename__ = "prompt_sets"
    __table_args__ = (
        enum_check("source", PromptSource),
        UniqueConstraint("project_id", "name"),
        Index("ix_prompt_sets_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    source: Mapped[PromptSource] = mapped_column(EnumText(PromptSource))
    count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(Text)
    # Loaded only when asked for: lists and checks need the counts, not the text.
    prompts: Mapped[list[str]] = mapped_column(JSONB, deferred=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
