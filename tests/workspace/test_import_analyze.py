"""Imports refresh statistics only when they change a large share of the items table: a
1,000-row request into a table many times its size leaves it to autovacuum (issue 14 #19)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.auth.models import Role
from app.auth.service import Principal
from app.db import get_engine, session_scope
from app.items import importer
from app.projects.models import Project
from app.projects.service import get_project
from tests.helpers import Actor, make_items, sql_value


def test_the_policy() -> None:
    assert importer.needs_analyze(1000, 0)  # a first import into an empty table
    assert not importer.needs_analyze(999, 0)  # small imports never
    assert not importer.needs_analyze(1000, 1_000_000)  # 0.1% of the table
    assert importer.needs_analyze(200_000, 1_000_000)  # a fifth of it
    assert not importer.needs_analyze(199_999, 1_000_000)


@contextmanager
def analyzes() -> Iterator[list[str]]:
    seen: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("ANALYZE"):
            seen.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", watch)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", watch)


def _import(researcher: Actor, pid: int, rows: list[dict[str, object]]) -> None:
    principal = Principal(researcher.id, researcher.email, Role.researcher, researcher.token)
    with session_scope() as s:
        project = s.get_one(Project, pid)
        get_project(s, principal, pid)  # the caller may import here
        result = importer.import_rows(s, project, enumerate(rows, start=1))
    assert result.created == len(rows)


def test_imports_analyze_only_on_a_large_share(project_factory: Any, researcher: Actor) -> None:
    pid = int(project_factory("pairwise", items=0)["id"])
    with analyzes() as seen:
        _import(researcher, pid, make_items("pairwise", 6000, prefix="a"))
    assert seen == ["ANALYZE items, responses"]  # the table was empty: statistics now
    assert sql_value("SELECT reltuples FROM pg_class WHERE relname = 'items'") >= 6000
    with analyzes() as seen:
        _import(researcher, pid, make_items("pairwise", 1000, prefix="b"))
    assert seen == []  # 1,000 rows into about 6,000: left to autovacuum
    with analyzes() as seen:
        _import(researcher, pid, make_items("pairwise", 2000, prefix="c"))
    assert seen == ["ANALYZE items, responses"]  # a third of the table
