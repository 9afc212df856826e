"""The statistics are pure functions over arrays: these tests need no database or Redis.

The suite-wide fixtures create a PostgreSQL database per run and truncate every table after
each test; here they are replaced by no-ops so that a run of tests/quality alone starts at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    yield ""


@pytest.fixture
def clean_tables() -> Iterator[None]:
    yield
