"""Loops: definitions, iterations, and one row per step of an iteration.

Revision ID: 0011
Revises: 0013
Create Date: 2026-12-03 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOOP_STATUSES = "'running', 'paused', 'succeeded', 'stopped', 'failed', 'cancelled'"
STEPS = "'generate', 'route', 'labels', 'snapshot', 'reward_model', 'update', 'evaluate'"
STEP_STATUSES = "'running', 'waiting', 'succeeded', 'skipped', 'failed', 'cancelled', 'stopped'"


def _now(name: str, nullable: bool = False) -> sa.Column[sa.DateTime]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=nullable
    )


def _json(name: str, default: str | None = None, nullable: bool = True) -> sa.Column[dict]:  # type: ignore[type-arg]
    return sa.Column(
        name, postgresql.JSONB(astext_type=sa.Text()), server_default=default, nullable=nullable
    )


def upgrade() -> None:
    op.create_table(
        "loops",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        _json("config", nullable=False),
        sa.Column("status", sa.Text(), server_default="running", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _now("updated_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        sa.CheckConstraint(f"status IN ({LOOP_STATUSES})", name=op.f("ck_loops_status")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_loops_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_loops_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loops")),
    )
    op.create_index("ix_loops_project_id_id", "loops", ["project_id", "id"])
    op.create_index(
        "ix_loops_active",
        "loops",
        ["id"],
        postgresql_where=sa.text("status IN ('running', 'paused')"),
    )
    op.create_table(
        "loop_iterations",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("loop_id", sa.BigInteger(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("policy_model_id", sa.BigInteger(), nullable=False),
        sa.Column("reward_model_id", sa.BigInteger(), nullable=True),
        sa.Column("new_policy_model_id", sa.BigInteger(), nullable=True),
        sa.Column("label_deadline", sa.DateTime(timezone=True), nullable=True),
        _json("metrics"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["loops.id"],
            name=op.f("fk_loop_iterations_loop_id_loops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_model_id"],
            ["model_versions.id"],
            name=op.f("fk_loop_iterations_policy_model_id_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reward_model_id"],
            ["model_versions.id"],
            name=op.f("fk_loop_iterations_reward_model_id_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["new_policy_model_id"],
            ["model_versions.id"],
            name=op.f("fk_loop_iterations_new_policy_model_id_model_versions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_iterations")),
        sa.UniqueConstraint(
            "loop_id", "iteration", name=op.f("uq_loop_iterations_loop_id_iteration")
        ),
    )
    op.create_table(
        "loop_steps",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("loop_id", sa.BigInteger(), nullable=False),
        sa.Column("iteration", sa.Integer(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        _json("links", default="{}", nullable=False),
        _json("detail"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _now("created_at"),
        sa.CheckConstraint(f"step IN ({STEPS})", name=op.f("ck_loop_steps_step")),
        sa.CheckConstraint(f"status IN ({STEP_STATUSES})", name=op.f("ck_loop_steps_status")),
        sa.ForeignKeyConstraint(
            ["loop_id"],
            ["loops.id"],
            name=op.f("fk_loop_steps_loop_id_loops"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name=op.f("fk_loop_steps_job_id_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loop_steps")),
        sa.UniqueConstraint(
            "loop_id", "iteration", "step", name=op.f("uq_loop_steps_loop_id_iteration_step")
        ),
    )
    op.create_index("ix_loop_steps_job_id", "loop_steps", ["job_id"])


def downgrade() -> None:
    op.drop_table("loop_steps")
    op.drop_table("loop_iterations")
    op.drop_index("ix_loops_active", table_name="loops")
    op.drop_index("ix_loops_project_id_id", table_name="loops")
    op.drop_table("loops")
