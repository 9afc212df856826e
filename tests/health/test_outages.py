"""A lost database connection answers 503 with a JSON body and Retry-After, and the pool
recovers on its own: the next request is served normally."""

from __future__ import annotations

import os

import psycopg

from tests.conftest import Actor


def _terminate_app_connections() -> int:
    """Kill every other backend of this test run's own database (never the shared ones)."""
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


def test_lost_database_connection_is_503_then_recovers(researcher: Actor) -> None:
    assert researcher.client.get("/api/v1/me").status_code == 200  # a pooled connection exists
    assert _terminate_app_connections() >= 1
    r = researcher.client.get("/api/v1/me")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "service_unavailable"
    assert "database" in r.json()["detail"]
    assert int(r.headers["Retry-After"]) >= 1
    # Invalidate-on-disconnect: the pool drops the dead connections and opens fresh ones.
    for _ in range(5):
        assert researcher.client.get("/api/v1/me").status_code == 200


def test_lost_connection_during_a_write_is_503_and_the_retry_is_stored_once(
    researcher: Actor,
) -> None:
    assert researcher.client.get("/api/v1/projects").status_code == 200
    _terminate_app_connections()
    r = researcher.client.post("/api/v1/projects", json={"name": "a", "kind": "pairwise"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "service_unavailable"
    r = researcher.client.post("/api/v1/projects", json={"name": "a", "kind": "pairwise"})
    assert r.status_code == 201, r.text
    assert len(researcher.client.get("/api/v1/projects").json()["items"]) == 1
