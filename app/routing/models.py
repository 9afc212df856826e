"""Routing policies (versioned), a project's routing, decisions, budget ledger, learned models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, CreatedAt, EnumText, enum_check
from app.items.models import ItemRouting as ItemRouting  # re-exported

# Costs in cost units (currency or hours); exact decimals so that concurrent sums never drift.
Money = Numeric(18, 6)


class Strategy(StrEnum):
    all_human = "all_human"
    all_ai = "all_ai"
    random = "random"
    rules = "rules"
    uncertainty = "uncertainty"
    learned = "learned"


class Decision(StrEnum):
    human = "human"
    ai = "ai"
    both = "both"


class RoutingPolicy(CreatedAt, Base):
    __tablename__ = "routing_policies"
    __table_args__ = (UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RoutingPolicyVersion(CreatedAt, Base):
    """One immutable version: editing a policy adds a version, so decisions keep theirs."""

    __tablename__ = "routing_policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "version"),
        enum_check("strategy", Strategy),
        CheckConstraint("human_budget >= 0", name="budget_nonnegative"),
        CheckConstraint("human_cost >= 0", name="cost_nonnegative"),
        CheckConstraint("audit_fraction >= 0 AND audit_fraction <= 1", name="audit_fraction"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("routing_policies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    strategy: Mapped[Strategy] = mapped_column(EnumText(Strategy))
    # Strategy parameters (fraction, rules, thresholds, ...); see app/routing/schemas.py.
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    human_budget: Mapped[Decimal] = mapped_column(Money)
    human_cost: Mapped[Decimal] = mapped_column(Money)
    # Human annotations per human-routed item; NULL: the project's overlap.
    human_overlap: Mapped[int | None] = mapped_column(Integer)
    audit_fraction: Mapped[float] = mapped_column(Float, server_default="0")
    # {"metadata key": {"value": minimum human fraction}}
    min_human: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    route_after_import: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ProjectRouting(Base):
    """The policy version and judge pool a project routes with; its presence holds new items."""

    __tablename__ = "project_routing"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("routing_policy_versions.id", ondelete="RESTRICT")
    )
    judge_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RoutingBudget(Base):
    """The ledger: reserved by route jobs atomically, moved to spent as human labels arrive."""

    __tablename__ = "routing_budgets"
    __table_args__ = (
        CheckConstraint("reserved >= 0 AND spent >= 0", name="nonnegative"),
        CheckConstraint("reserved + spent <= total", name="within_total"),
    )

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    total: Mapped[Decimal] = mapped_column(Money)
    reserved: Mapped[Decimal] = mapped_column(Money, server_default="0")
    spent: Mapped[Decimal] = mapped_column(Money, server_default="0")
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RoutingDecision(CreatedAt, Base):
    __tablename__ = "routing_decisions"
    __table_args__ = (
        # An item is routed once: concurrent route jobs cannot both decide it.
        UniqueConstraint("item_id"),
        enum_check("decision", Decision),
        Index("ix_routing_decisions_project_id_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("routing_policy_versions.id", ondelete="RESTRICT")
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    decision: Mapped[Decision] = mapped_column(EnumText(Decision))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    predicted_gain: Mapped[float | None] = mapped_column(Float)
    # Human annotations reserved for, at unit_cost each; spent/released as they settle.
    reserved_units: Mapped[int] = mapped_column(Integer, server_default="0")
    unit_cost: Mapped[Decimal] = mapped_column(Money, server_default="0")
    spent_units: Mapped[int] = mapped_column(Integer, server_default="0")
    released_units: Mapped[int] = mapped_column(Integer, server_default="0")

    @property
    def reserved_cost(self) -> Decimal:
        return self.unit_cost * self.reserved_units


class RoutingModel(CreatedAt, Base):
    """A learned router fitted for a policy version on a project, with its validation score."""

    __tablename__ = "routing_models"
    __table_args__ = (
        Index("ix_routing_models_version_project", "policy_version_id", "project_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("routing_policy_versions.id", ondelete="CASCADE")
    )
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    n_train: Mapped[int] = mapped_column(Integer)
    # {"auc": ..., "brier": ..., "base_rate": ..., "n_validation": ...}
    validation: Mapped[dict[str, Any]] = mapped_column(JSONB)
    features: Mapped[list[str]] = mapped_column(JSONB)
    # The fitted scikit-learn pipeline, pickled by the worker that fitted it (never user input).
    model: Mapped[bytes] = mapped_column(LargeBinary)
