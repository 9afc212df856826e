"""Long-running jobs: attempts policy, heartbeats, checkpoints, cancel; status `cancelled`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JobStatus as of this revision (the model generates its CHECK from the enum; a test compares).
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
OLD_STATUSES = ("queued", "running", "succeeded", "failed")


def _in(values: Sequence[str]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("progress_detail", postgresql.JSONB(), nullable=True))
    op.add_column(
        "jobs", sa.Column("lost_attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "jobs", sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False)
    )
    op.add_column(
        "jobs", sa.Column("time_limit_s", sa.Integer(), server_default="3600", nullable=False)
    )
    op.add_column("jobs", sa.Column("checkpoint", postgresql.JSONB(), nullable=True))
    op.add_column(
        "jobs", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "jobs",
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
    )
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    # Queued jobs keep their place: due since they were created.
    op.execute("UPDATE jobs SET due_at = created_at WHERE status = 'queued'")
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    op.create_check_constraint(op.f("ck_jobs_status"), "jobs", _in(STATUSES))
    op.create_check_constraint(op.f("ck_jobs_max_attempts"), "jobs", "max_attempts >= 1")
    # GET /jobs: a project's jobs, and a user's own, newest first.
    op.create_index("ix_jobs_project_id_id", "jobs", ["project_id", "id"], unique=False)
    op.create_index("ix_jobs_created_by_id", "jobs", ["created_by", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_created_by_id", table_name="jobs")
    op.drop_index("ix_jobs_project_id_id", table_name="jobs")
    op.drop_constraint(op.f("ck_jobs_max_attempts"), "jobs", type_="check")
    op.drop_constraint(op.f("ck_jobs_status"), "jobs", type_="check")
    op.execute("UPDATE jobs SET status = 'failed', error = 'cancelled' WHERE status = 'cancelled'")
    op.create_check_constraint(op.f("ck_jobs_status"), "jobs", _in(OLD_STATUSES))
    for column in (
        "heartbeat_at",
        "due_at",
        "cancel_requested_at",
        "checkpoint",
        "time_limit_s",
        "max_attempts",
        "lost_attempts",
        "progress_detail",
    ):
        op.drop_column("jobs", column)
