"""Test fixtures: a fresh PostgreSQL database per run, real Redis, table truncation per test.

Point the suite at other servers with TANDEM_TEST_PG (a server URL whose user may create
databases) and TANDEM_TEST_REDIS (database TANDEM_TEST_REDIS_DB, default 13); the defaults are
the services this project's CI machine runs. Helpers live in tests/helpers.py, database
factories in tests/factories.py; this file holds fixtures only.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

# Re-exported for tests that import them from here (new tests: import from tests.helpers).
from tests.helpers import PASSWORD, Actor, make_items

__all__ = ["PASSWORD", "Actor", "make_items"]

PG_SERVER = os.environ.get("TANDEM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("TANDEM_TEST_REDIS", "redis://127.0.0.1:6379")
# Concurrent runs on one machine each take their own database number.
REDIS_DB = int(os.environ.get("TANDEM_TEST_REDIS_DB", "13"))

_DB_NAME = f"tandem_test_{os.getpid()}_{secrets.token_hex(3)}"
_DB_URL = PG_SERVER.rsplit("/", 1)[0] + "/" + _DB_NAME
_TMP = Path(os.environ.get("TMPDIR", "/tmp")) / f"tandem-test-{_DB_NAME}"

# Before anything imports app.config: the app under test talks to the test database.
os.environ["TANDEM_DATABASE_URL"] = _DB_URL
os.environ["TANDEM_REDIS_URL"] = f"{REDIS_BASE}/{REDIS_DB}"
os.environ["TANDEM_SECRET_KEY"] = secrets.token_urlsafe(48)
os.environ["TANDEM_DATA_DIR"] = str(_TMP)
os.environ.setdefault("TANDEM_LOGIN_ATTEMPTS_PER_MINUTE", "1000")
# Test-only job kinds, through the registry's plugin hook (worker processes inherit it).
os.environ["TANDEM_JOB_MODULES"] = "tests.jobs.kinds"


def _admin_conn() -> psycopg.Connection:
    return psycopg.connect(PG_SERVER, autocommit=True)


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{_DB_NAME}"')
    redis.Redis.from_url(os.environ["TANDEM_REDIS_URL"]).flushdb()
    from app.migrate import upgrade_head

    upgrade_head()
    yield _DB_URL
    from app.db import get_engine

    get_engine().dispose()
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_DB_NAME}" WITH (FORCE)')


@cache
def _truncate_sql() -> str:
    """Every table of the models (Alembic's own version table is not one of them)."""
    from app.models import Base

    tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
    return f"TRUNCATE {tables} RESTART IDENTITY CASCADE"


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    yield
    for attempt in range(10):
        try:
            with psycopg.connect(_DB_URL, autocommit=True) as conn:
                conn.execute(_truncate_sql())
            break
        except psycopg.errors.DeadlockDetected:
            # A request a closed browser page left in flight on the live server still reads
            # these tables; PostgreSQL picked the TRUNCATE as the victim: run it again.
            if attempt == 9:
                raise
            time.sleep(0.3)
    redis.Redis.from_url(os.environ["TANDEM_REDIS_URL"]).flushdb()


@pytest.fixture(scope="session")
def app_client_factory() -> Callable[[], httpx.Client]:
    from fastapi.testclient import TestClient

    from app.main import app

    def make() -> httpx.Client:
        return TestClient(app)

    return make


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The Argon2 hash of tests.helpers.PASSWORD (hashed once per run)."""
    from tests.factories import password_hash

    return password_hash()


@pytest.fixture
def make_user(app_client_factory: Callable[[], httpx.Client]) -> Iterator[Callable[..., Actor]]:
    """A user from the factory (password tests.helpers.PASSWORD) with an API token and client."""
    from app.auth.models import TokenKind
    from app.auth.service import issue_token
    from app.db import session_scope
    from tests.factories import create_user

    clients: list[httpx.Client] = []

    def make(role: str = "annotator", email: str | None = None) -> Actor:
        user = create_user(role, email)
        with session_scope() as session:
            token, _ = issue_token(session, user, TokenKind.api, 3600)
        client = app_client_factory()
        client.headers["Authorization"] = f"Bearer {token}"
        clients.append(client)
        return Actor(user.id, user.email, role, token, client)

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def researcher(make_user: Callable[..., Actor]) -> Actor:
    return make_user("researcher")


@pytest.fixture
def admin(make_user: Callable[..., Actor]) -> Actor:
    return make_user("admin")


@pytest.fixture
def project_factory(researcher: Actor) -> Callable[..., dict[str, object]]:
    """Create a project owned by `researcher` through the API, import items, add members."""
    from tests.helpers import make_items

    def make(
        kind: str = "pairwise", items: int = 5, members: tuple[Actor, ...] = (), **settings: object
    ) -> dict[str, object]:
        body: dict[str, object] = {"name": f"{kind} project", "kind": kind, **settings}
        if kind == "span":
            body.setdefault("span_labels", ["bad", "good"])
        r = researcher.client.post("/api/v1/projects", json=body)
        assert r.status_code == 201, r.text
        project: dict[str, object] = r.json()
        if items:
            r = researcher.client.post(
                f"/api/v1/projects/{project['id']}/items", json=make_items(kind, items)
            )
            assert r.status_code == 201, r.text
        for m in members:
            r = researcher.client.post(
                f"/api/v1/projects/{project['id']}/members", json={"user_id": m.id}
            )
            assert r.status_code == 201, r.text
        return project

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database: str) -> Iterator[str]:
    """The app under uvicorn in a subprocess, for tests that need real concurrent HTTP."""
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=os.environ.copy(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("the test server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)
