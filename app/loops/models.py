"""Loops, their iterations and the steps of each iteration.

A step row is unique per (loop, iteration, step) and is created in the same transaction as its
job, so a step can never start twice; the loop's advancer (app/loops/advance.py) moves a loop on
under the loop row's lock.
"""

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
    Integer,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check, sql_in


class LoopStatus(StrEnum):
    running = "running"
    paused = "paused"  # the running step finishes; the next one waits for resume
    succeeded = "succeeded"  # every iteration evaluated
    stopped = "stopped"  # a stop rule ended it (labels missing at the deadline)
    failed = "failed"  # a step's job failed
    cancelled = "cancelled"


ACTIVE = (LoopStatus.running, LoopStatus.paused)


class StepName(StrEnum):
    generate = "generate"
    route = "route"
    labels = "labels"
    snapshot = "snapshot"
    reward_model = "reward_model"
    update = "update"
    evaluate = "evaluate"


STEPS: tuple[StepName, ...] = tuple(StepName)


class StepStatus(StrEnum):
    running = "running"  # its job is queued or running
    waiting = "waiting"  # the labels step: waiting for labels until the deadline
    succeeded = "succeeded"
    skipped = "skipped"  # nothing to do (route without routing or judges)
    failed = "failed"
    cancelled = "cancelled"
    stopped = "stopped"  # the labels step that applied the stop rule


class Loop(CreatedAt, Base):
    __tablename__ = "loops"
    __table_args__ = (
        enum_check("status", LoopStatus),
        Index("ix_loops_project_id_id", "project_id", "id"),
        # The advancer's scan: loops that may move.
        Index("ix_loops_active", "id", postgresql_where=text(sql_in("status", ACTIVE))),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(Text)
    # The request as validated (LoopCreate), ids resolved: what every step reads.
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[LoopStatus] = mapped_column(EnumText(LoopStatus), server_default="running")
    # Why it stopped, failed or was cancelled.
    reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoopIteration(CreatedAt, Base):
    __tablename__ = "loop_iterations"
    __table_args__ = (UniqueConstraint("loop_id", "iteration"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loop_id: Mapped[int] = mapped_column(ForeignKey("loops.id", ondelete="CASCADE"))
    iteration: Mapped[int] = mapped_column(Integer)  # 1..iterations; 0 is the starting policy
    # The policy that samples in this iteration (the previous iteration's update).
    policy_model_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    reward_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    # The policy this iteration's update made (best_of_n keeps the same weights).
    new_policy_model_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="RESTRICT")
    )
    # When waiting for human labels ends and the stop rule applies.
    label_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoopStep(CreatedAt, Base):
    __tablename__ = "loop_steps"
    __table_args__ = (
        UniqueConstraint("loop_id", "iteration", "step"),
        enum_check("step", StepName),
        enum_check("status", StepStatus),
        Index("ix_loop_steps_job_id", "job_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    loop_id: Mapped[int] = mapped_column(ForeignKey("loops.id", ondelete="CASCADE"))
    iteration: Mapped[int] = mapped_column(Integer)
    step: Mapped[StepName] = mapped_column(EnumText(StepName))
    status: Mapped[StepStatus] = mapped_column(EnumText(StepStatus))
    # The step's job (generation, route, snapshot, training run, evaluation); NULL for labels.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # What it made or used: export_id, training_run_id, model_id, judge job ids, item counts.
    links: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    # Live detail (labels pending and the deadline; the job's result summary).
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
