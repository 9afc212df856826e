"""Routing: policies and their versions, a project's routing, decisions, budget ledger, models.

Adds `items.routing` (NULL outside routed projects, so existing rows are untouched) and a
partial index over held items for the route job's scan.

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(18, 6)
STRATEGIES = "'all_human', 'all_ai', 'random', 'rules', 'uncertainty', 'learned'"


def _created_at() -> sa.Column[sa.DateTime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.add_column("items", sa.Column("routing", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_items_routing"), "items", "routing IN ('held', 'human', 'ai', 'both')"
    )
    op.create_index(
        "ix_items_held",
        "items",
        ["project_id", "id"],
        postgresql_where=sa.text("routing = 'held'"),
    )
    op.create_table(
        "routing_policies",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_routing_policies_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_routing_policies_name")),
    )
    op.create_table(
        "routing_policy_versions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("policy_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column(
            "params", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("human_budget", MONEY, nullable=False),
        sa.Column("human_cost", MONEY, nullable=False),
        sa.Column("human_overlap", sa.Integer(), nullable=True),
        sa.Column("audit_fraction", sa.Float(), server_default="0", nullable=False),
        sa.Column(
            "min_human",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("route_after_import", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "audit_fraction >= 0 AND audit_fraction <= 1",
            name=op.f("ck_routing_policy_versions_audit_fraction"),
        ),
        sa.CheckConstraint(
            "human_budget >= 0", name=op.f("ck_routing_policy_versions_budget_nonnegative")
        ),
        sa.CheckConstraint(
            "human_cost >= 0", name=op.f("ck_routing_policy_versions_cost_nonnegative")
        ),
        sa.CheckConstraint(
            f"strategy IN ({STRATEGIES})", name=op.f("ck_routing_policy_versions_strategy")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_routing_policy_versions_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["routing_policies.id"],
            name=op.f("fk_routing_policy_versions_policy_id_routing_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_policy_versions")),
        sa.UniqueConstraint(
            "policy_id", "version", name=op.f("uq_routing_policy_versions_policy_id_version")
        ),
    )
    op.create_table(
        "project_routing",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_version_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "judge_ids", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["routing_policy_versions.id"],
            name=op.f("fk_project_routing_policy_version_id_routing_policy_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_project_routing_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_routing")),
    )
    op.create_table(
        "routing_budgets",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("reserved", MONEY, server_default="0", nullable=False),
        sa.Column("spent", MONEY, server_default="0", nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "reserved >= 0 AND spent >= 0", name=op.f("ck_routing_budgets_nonnegative")
        ),
        sa.CheckConstraint(
            "reserved + spent <= total", name=op.f("ck_routing_budgets_within_total")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_routing_budgets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_routing_budgets")),
    )
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("policy_version_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("predicted_gain", sa.Float(), nullable=True),
        sa.Column("reserved_units", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unit_cost", MONEY, server_default="0", nullable=False),
        sa.Column("spent_units", sa.Integer(), server_default="0", nullable=False),
        sa.Column("released_units", sa.Integer(), server_default="0", nullable=False),
        _created_at(),
        sa.CheckConstraint(
            "decision IN ('human', 'ai', 'both')", name=op.f("ck_routing_decisions_decision")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_routing_decisions_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_routing_decisions_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["routing_policy_versions.id"],
            name=op.f("fk_routing_decisions_policy_version_id_routing_policy_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_routing_decisions_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
        sa.UniqueConstraint("item_id", name=op.f("uq_routing_decisions_item_id")),
    )
    op.create_index("ix_routing_decisions_project_id_id", "routing_decisions", ["project_id", "id"])
    op.create_table(
        "routing_models",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("policy_version_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("n_train", sa.Integer(), nullable=False),
        sa.Column("validation", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        _created_at(),
        sa.ForeignKeyConstraint(
            ["policy_version_id"],
            ["routing_policy_versions.id"],
            name=op.f("fk_routing_models_policy_version_id_routing_policy_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_routing_models_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_models")),
    )
    op.create_index(
        "ix_routing_models_version_project",
        "routing_models",
        ["policy_version_id", "project_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_routing_models_version_project", table_name="routing_models")
    op.drop_table("routing_models")
    op.drop_index("ix_routing_decisions_project_id_id", table_name="routing_decisions")
    op.drop_table("routing_decisions")
    op.drop_table("routing_budgets")
    op.drop_table("project_routing")
    op.drop_table("routing_policy_versions")
    op.drop_table("routing_policies")
    op.drop_index("ix_items_held", table_name="items")
    op.drop_constraint(op.f("ck_items_routing"), "items", type_="check")
    op.drop_column("items", "routing")
