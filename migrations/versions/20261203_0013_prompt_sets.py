"""Prompt sets: named, immutable lists of prompts in a project, for generation; and the run
whose samples an SFT run trains on (`training_runs.source_run_id`).

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-03 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.Column("prompts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "source IN ('list', 'json', 'jsonl', 'csv', 'text')",
            name=op.f("ck_prompt_sets_source"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_prompt_sets_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_prompt_sets_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_sets")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_prompt_sets_project_id_name")),
    )
    op.create_index("ix_prompt_sets_project_id_id", "prompt_sets", ["project_id", "id"])
    # Nullable, no default: a catalogue change only, no table rewrite.
    op.add_column("training_runs", sa.Column("source_run_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_training_runs_source_run_id_training_runs"),
        "training_runs",
        "training_runs",
        ["source_run_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_training_runs_source_run_id_training_runs"), "training_runs", type_="foreignkey"
    )
    op.drop_column("training_runs", "source_run_id")
    op.drop_index("ix_prompt_sets_project_id_id", table_name="prompt_sets")
    op.drop_table("prompt_sets")
