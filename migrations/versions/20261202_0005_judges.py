"""Judges: judges, prompt templates (versioned), judge runs and outputs; annotations.judge_id
becomes a foreign key.

AI annotations written before this revision name judges that no table held (tests, restored
exports): each such id gets a disabled judge row `judge-<id>` (backend `simulated`, model
`unknown`) so that the foreign key can be added without losing or altering an annotation.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False)


def _created_at() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _fk(table: str, column: str, target: str, ondelete: str | None) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    jsonb = postgresql.JSONB(astext_type=sa.Text())
    op.create_table(
        "judges",
        _id(),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("backend", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("params", jsonb, server_default="{}", nullable=False),
        sa.Column("costs", jsonb, server_default="{}", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _created_at(),
        _fk("judges", "created_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judges")),
        sa.UniqueConstraint("name", name=op.f("uq_judges_name")),
    )
    op.create_table(
        "judge_templates",
        _id(),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("inconsistent", sa.Text(), server_default="low_confidence", nullable=False),
        sa.Column("used", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        _created_at(),
        _fk("judge_templates", "created_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_templates")),
        sa.UniqueConstraint("kind", "version", name=op.f("uq_judge_templates_kind_version")),
    )
    op.create_table(
        "judge_runs",
        _id(),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("judge_id", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("items", jsonb, nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("unparsed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inconsistent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("tokens_in", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("tokens_out", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost", sa.Float(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        _fk("judge_runs", "project_id", "projects", "CASCADE"),
        _fk("judge_runs", "judge_id", "judges", "CASCADE"),
        _fk("judge_runs", "template_id", "judge_templates", None),
        _fk("judge_runs", "job_id", "jobs", "SET NULL"),
        _fk("judge_runs", "created_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_runs")),
    )
    op.create_index("ix_judge_runs_project_id_id", "judge_runs", ["project_id", "id"])
    op.create_table(
        "judge_outputs",
        _id(),
        sa.Column("project_id", sa.BigInteger(), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("judge_id", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("annotation_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("raw", jsonb, nullable=False),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("consistent", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        _created_at(),
        sa.CheckConstraint(
            "status IN ('parsed', 'unparsed', 'inconsistent')",
            name=op.f("ck_judge_outputs_status"),
        ),
        _fk("judge_outputs", "project_id", "projects", "CASCADE"),
        _fk("judge_outputs", "item_id", "items", "CASCADE"),
        _fk("judge_outputs", "judge_id", "judges", "CASCADE"),
        _fk("judge_outputs", "template_id", "judge_templates", None),
        _fk("judge_outputs", "run_id", "judge_runs", "SET NULL"),
        _fk("judge_outputs", "annotation_id", "annotations", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judge_outputs")),
        sa.UniqueConstraint(
            "item_id",
            "judge_id",
            "template_id",
            name=op.f("uq_judge_outputs_item_id_judge_id_template_id"),
        ),
    )
    op.create_index(
        "ix_judge_outputs_project_id_judge_id", "judge_outputs", ["project_id", "judge_id"]
    )
    # Judges for AI annotations written before judges existed (see the docstring).
    op.execute(
        "INSERT INTO judges (id, name, backend, model, enabled)"
        " SELECT DISTINCT judge_id, 'judge-' || judge_id, 'simulated', 'unknown', false"
        " FROM annotations WHERE judge_id IS NOT NULL"
    )
    op.execute(
        "SELECT setval(pg_get_serial_sequence('judges', 'id'),"
        " GREATEST((SELECT max(id) FROM judges), 1), (SELECT count(*) > 0 FROM judges))"
    )
    op.create_foreign_key(
        op.f("fk_annotations_judge_id_judges"),
        "annotations",
        "judges",
        ["judge_id"],
        ["id"],
        ondelete="RESTRICT",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_annotations_judge_id_judges"), "annotations", type_="foreignkey")
    op.drop_index("ix_judge_outputs_project_id_judge_id", table_name="judge_outputs")
    op.drop_table("judge_outputs")
    op.drop_index("ix_judge_runs_project_id_id", table_name="judge_runs")
    op.drop_table("judge_runs")
    op.drop_table("judge_templates")
    op.drop_table("judges")
