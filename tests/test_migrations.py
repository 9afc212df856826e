"""The migrated schema is the one the models describe (what autogenerate would change: nothing)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.models
from app.db import get_engine


def test_the_migrations_match_the_models(database: str) -> None:
    with get_engine().connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), app.models.Base.metadata)
    assert diffs == []
