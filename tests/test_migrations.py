"""The migrated schema is the one the models describe (what autogenerate would change: nothing)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.models
from app.db import get_engine


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave out tables that tests create for themselves (test_job_effects...)."""
    return not (type_ == "table" and name is not None and name.startswith("test_"))


def test_the_migrations_match_the_models(database: str) -> None:
    with get_engine().connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _ours})
        diffs = compare_metadata(context, app.models.Base.metadata)
    assert diffs == []
