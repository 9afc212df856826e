"""Judges, their prompt templates (versioned), judge runs, and one output per judged item.

An output is the judge's full answer to one item under one template version (raw text of both
orders, probability, tokens, latency, cost) and the key of idempotency: one per (item, judge,
template), so a re-delivered chunk or a second run adds nothing. A parsed output has its vote
in `annotations` (source 'ai', `annotation_id` here); an unparsed or inconsistent one has none.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check


class OutputStatus(StrEnum):
    parsed = "parsed"  # a vote was stored
    unparsed = "unparsed"  # the answer could not be read as a vote (raw text kept)
    # pairwise: the two orders disagreed and the template's rule says no vote
    inconsistent = "inconsistent"


class Judge(CreatedAt, Base):
    __tablename__ = "judges"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    # Backend parameters plus the judge's own (sampling, chunk size): never an API key.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # per_call, per_1k_input, per_1k_output (any currency, the same for every judge)
    costs: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class JudgeTemplate(CreatedAt, Base):
    """A prompt template for one task kind, at one version; immutable once a run used it."""

    __tablename__ = "judge_templates"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    system: Mapped[str] = mapped_column(Text)
    user: Mapped[str] = mapped_column(Text)
    # pairwise: what an inconsistent position swap becomes ("tie" or "low_confidence")
    inconsistent: Mapped[str] = mapped_column(Text, server_default="low_confidence")
    used: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class JudgeRun(CreatedAt, Base):
    __tablename__ = "judge_runs"
    __table_args__ = (Index("ix_judge_runs_project_id_id", "project_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("judge_templates.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # "unjudged", "all", or a list of item ids, as asked
    items: Mapped[Any] = mapped_column(JSONB)
    total: Mapped[int | None] = mapped_column(Integer)  # items to judge, counted at start
    done: Mapped[int] = mapped_column(Integer, server_default="0")  # outputs stored (any status)
    unparsed: Mapped[int] = mapped_column(Integer, server_default="0")
    inconsistent: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")  # items whose calls failed
    skipped: Mapped[int] = mapped_column(Integer, server_default="0")  # judged already
    tokens_in: Mapped[int] = mapped_column(BigInteger, server_default="0")
    tokens_out: Mapped[int] = mapped_column(BigInteger, server_default="0")
    cost: Mapped[float] = mapped_column(Float, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class JudgeOutput(CreatedAt, Base):
    __tablename__ = "judge_outputs"
    __table_args__ = (
        enum_check("status", OutputStatus),
        # Idempotency: an item is judged once per judge and template version.
        UniqueConstraint("item_id", "judge_id", "template_id"),
        Index("ix_judge_outputs_project_id_judge_id", "project_id", "judge_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    judge_id: Mapped[int] = mapped_column(ForeignKey("judges.id", ondelete="CASCADE"))
    template_id: Mapped[int] = mapped_column(ForeignKey("judge_templates.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("judge_runs.id", ondelete="SET NULL"))
    annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL")
    )
    status: Mapped[OutputStatus] = mapped_column(EnumText(OutputStatus))
    model: Mapped[str] = mapped_column(Text)  # what the backend said produced it
    # Per call: {"shown": [response ids], "text": raw answer, "finish_reason", "logprob"?}
    raw: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # pairwise: P(the first imported response is better); else the judge's confidence if known
    probability: Mapped[float | None] = mapped_column(Float)
    consistent: Mapped[bool | None] = mapped_column(Boolean)  # pairwise: both orders agree
    error: Mapped[str | None] = mapped_column(Text)  # why it is unparsed
    tokens_in: Mapped[int] = mapped_column(Integer)
    tokens_out: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    cost: Mapped[float] = mapped_column(Float)
