"""Quality: cached stats snapshots, quality settings, annotator pauses, adjudications.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "project_stats",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_annotation_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        _fk("project_stats", "project_id", "projects", "CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_stats")),
    )
    op.create_table(
        "quality_settings",
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("gold_warn_below", sa.Float(), server_default="0.7", nullable=False),
        sa.Column("gold_pause_below", sa.Float(), nullable=True),
        sa.Column("gold_min_answers", sa.Integer(), server_default="10", nullable=False),
        sa.Column("review_below", sa.Float(), server_default="0.6", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(
            "gold_warn_below >= 0 AND gold_warn_below <= 1",
            name=op.f("ck_quality_settings_warn_range"),
        ),
        sa.CheckConstraint(
            "gold_pause_below IS NULL OR (gold_pause_below >= 0 AND gold_pause_below <= 1)",
            name=op.f("ck_quality_settings_pause_range"),
        ),
        sa.CheckConstraint(
            "gold_min_answers >= 1", name=op.f("ck_quality_settings_min_answers_positive")
        ),
        sa.CheckConstraint(
            "review_below >= 0 AND review_below <= 1",
            name=op.f("ck_quality_settings_review_range"),
        ),
        _fk("quality_settings", "project_id", "projects", "CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_quality_settings")),
    )
    op.create_table(
        "annotator_pauses",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("paused_by", sa.BigInteger(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.BigInteger(), nullable=True),
        _fk("annotator_pauses", "project_id", "projects", "CASCADE"),
        _fk("annotator_pauses", "user_id", "users", "CASCADE"),
        _fk("annotator_pauses", "paused_by", "users", "SET NULL"),
        _fk("annotator_pauses", "lifted_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annotator_pauses")),
    )
    op.create_index(
        "ux_annotator_pauses_active",
        "annotator_pauses",
        ["project_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "adjudications",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), server_default="", nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        _fk("adjudications", "item_id", "items", "CASCADE"),
        _fk("adjudications", "project_id", "projects", "CASCADE"),
        _fk("adjudications", "decided_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_adjudications")),
    )
    op.create_index("ix_adjudications_project_id", "adjudications", ["project_id"], unique=False)
    op.create_table(
        "review_candidates",
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("votes", sa.Integer(), nullable=False),
        sa.Column("top_share", sa.Float(), nullable=False),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _fk("review_candidates", "item_id", "items", "CASCADE"),
        _fk("review_candidates", "project_id", "projects", "CASCADE"),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_review_candidates")),
    )
    op.create_index(
        "ix_review_candidates_queue",
        "review_candidates",
        ["project_id", "top_share", "item_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_review_candidates_queue", table_name="review_candidates")
    op.drop_table("review_candidates")
    op.drop_index("ix_adjudications_project_id", table_name="adjudications")
    op.drop_table("adjudications")
    op.drop_index("ux_annotator_pauses_active", table_name="annotator_pauses")
    op.drop_table("annotator_pauses")
    op.drop_table("quality_settings")
    op.drop_table("project_stats")
