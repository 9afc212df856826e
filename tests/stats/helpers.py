"""Projects with votes written straight to the database, and the stats job run here."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from app.jobs import runner
from tests.factories import CreatedItem, ensure_judge
from tests.helpers import Actor


def insert_pairwise_votes(
    project_id: int,
    votes: Sequence[tuple[CreatedItem, int | None, int | None, str | None, int | None]],
) -> None:
    """Votes (item, user_id, judge_id, "a"|"b"|"tie" by import order, time_spent_ms) in one
    statement per vote (no assignments: the stats read annotations only)."""
    rng = random.Random(0)
    for judge_id in {v[2] for v in votes if v[2] is not None}:
        ensure_judge(judge_id)  # AI votes reference a judge row
    rows = []
    for item, user_id, judge_id, choice, ms in votes:
        first, second = item.response_ids
        preferred = {"a": first, "b": second, "tie": None}[choice or "tie"]
        shown = [first, second] if rng.random() < 0.5 else [second, first]
        payload = {"preferred": preferred, "tie": preferred is None}
        source = "human" if user_id else "ai"
        rows.append(
            (
                project_id,
                item.id,
                source,
                user_id,
                judge_id,
                orjson.dumps(payload).decode(),
                shown,
                ms,
            )
        )
    with psycopg.connect(os.environ["TANDEM_DATABASE_URL"], autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO annotations (project_id, item_id, source, user_id, judge_id, payload,"
            " schema_version, shown_order, time_spent_ms)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb, 1, %s, %s)",
            rows,
        )


def refresh(actor: Actor, project_id: int) -> dict[str, Any]:
    """Ask for a refresh, run its job here, and return GET /stats."""
    r = actor.client.post(f"/api/v1/projects/{project_id}/stats/refresh")
    assert r.status_code == 202, r.text
    assert runner.run_job(r.json()["job_id"]) == "done"
    got = actor.client.get(f"/api/v1/projects/{project_id}/stats")
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body
