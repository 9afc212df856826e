"""Enum CHECK constraints as the models now generate them (app.db.enum_check).

The hand-written CHECKs on users.role, api_tokens.kind, projects.kind, assignments.status and
annotations.source are replaced by the ones generated from the enums (Role, TokenKind,
TaskKind, AssignmentStatus, AnnotationSource): same names, same values, so no row can fail
them. The values are written out here, not imported, so that this revision stays what it was
when an enum later gains a value (that change ships its own migration). Each re-added CHECK is
checked against its table's rows while the table is locked: a sequential scan, about a second
per million annotations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, constraint name without the ck_<table>_ prefix, column, allowed values)
CHECKS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("users", "role", "role", ("annotator", "researcher", "admin")),
    ("api_tokens", "kind", "kind", ("api", "session")),
    ("projects", "kind", "kind", ("pairwise", "ranking", "span", "critique")),
    ("assignments", "status", "status", ("leased", "submitted", "skipped", "expired")),
    ("annotations", "source", "source", ("human", "ai")),
]


def _replace(table: str, name: str, column: str, values: tuple[str, ...]) -> None:
    full = op.f(f"ck_{table}_{name}")
    op.drop_constraint(full, table, type_="check")
    allowed = ", ".join(f"'{v}'" for v in values)
    op.create_check_constraint(full, table, f"{column} IN ({allowed})")


def upgrade() -> None:
    for table, name, column, values in CHECKS:
        _replace(table, name, column, values)


def downgrade() -> None:
    # Revision 0001 wrote the same constraints by hand.
    for table, name, column, values in CHECKS:
        _replace(table, name, column, values)
