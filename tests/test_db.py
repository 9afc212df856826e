"""Database helpers: enum CHECKs generated from the enums match the migrated database, enum
columns hand out members, and the per-test truncation covers every table."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import CheckConstraint, select
from sqlalchemy.exc import StatementError

from app.annotations.models import Annotation, AnnotationSource
from app.assignments.models import AssignmentStatus
from app.auth.models import Role, User
from app.db import enum_check, session_scope
from app.models import Base
from app.projects.models import Project
from app.projects.rules import TaskKind
from tests.factories import create_annotation, create_item, create_project, create_user
from tests.helpers import sql


def _enum_checks() -> list[tuple[str, CheckConstraint]]:
    return [
        (table.name, c)
        for table in Base.metadata.sorted_tables
        for c in table.constraints
        if isinstance(c, CheckConstraint) and "enum" in c.info
    ]


def test_enum_check_lists_every_value_of_the_enum() -> None:
    check = enum_check("status", AssignmentStatus)
    assert str(check.sqltext) == "status IN ('leased', 'submitted', 'skipped', 'expired')"
    assert check.name == "status" and check.info["enum"] is AssignmentStatus


def test_the_migrated_database_allows_exactly_the_enum_values() -> None:
    """Adding an enum value without a migration that widens its CHECK fails here."""
    checks = _enum_checks()
    assert {(table, str(c.name)) for table, c in checks} >= {
        ("users", "ck_users_role"),
        ("api_tokens", "ck_api_tokens_kind"),
        ("projects", "ck_projects_kind"),
        ("assignments", "ck_assignments_status"),
        ("annotations", "ck_annotations_source"),
    }
    for table, check in checks:
        [(definition,)] = sql(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " WHERE c.conrelid = %s::regclass AND c.conname = %s",
            table,
            str(check.name),
        )
        allowed = set(re.findall(r"'([^']*)'::text", definition))
        assert allowed == {m.value for m in check.info["enum"]}, (table, definition)


def test_enum_columns_read_back_as_enum_members() -> None:
    ann = create_user("researcher")
    item = create_item(create_project("critique", members=[ann]))
    create_annotation(item, user=ann, answer={"critique": "fine"})
    with session_scope() as session:
        user = session.scalars(select(User)).one()
        project = session.scalars(select(Project)).one()
        annotation = session.scalars(select(Annotation)).one()
        assert user.role is Role.researcher
        assert project.kind is TaskKind.critique
        assert annotation.source is AnnotationSource.human


def test_a_value_outside_the_enum_is_refused_before_the_database() -> None:
    refused = pytest.raises(StatementError, match="'superuser' is not a valid Role")
    with refused, session_scope() as session:
        session.add(User(email="x@example.org", password_hash="x", role="superuser"))
    assert sql("SELECT count(*) FROM users") == [(0,)]


def test_tests_truncate_every_table_of_the_models() -> None:
    from tests.conftest import _truncate_sql

    truncated = set(_truncate_sql().removeprefix("TRUNCATE ").split(" RESTART")[0].split(", "))
    assert truncated == set(Base.metadata.tables)
    in_database = {
        name
        for (name,) in sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        # Tests that need a table of their own (tests/jobs/kinds.py) name it test_*.
        if name != "alembic_version" and not name.startswith("test_")
    }
    assert in_database == truncated
