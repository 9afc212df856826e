"""Shared steps of the browser tests: projects through the API, reading back what was stored."""

from __future__ import annotations

import json
from typing import Any

from tests.factories import create_user
from tests.helpers import Actor, sql


def create_project(
    researcher: Actor, annotator: Actor, kind: str, items: list[dict[str, Any]], **settings: Any
) -> int:
    body: dict[str, Any] = {"name": f"{kind} e2e", "kind": kind, **settings}
    if kind == "span":
        body.setdefault("span_labels", ["wrong", "unclear"])
    r = researcher.client.post("/api/v1/projects", json=body)
    assert r.status_code == 201, r.text
    pid = int(r.json()["id"])
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=items)
    assert r.status_code == 201, r.text
    r = researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    assert r.status_code == 201, r.text
    return pid


def stored(project_id: int) -> list[dict[str, Any]]:
    """The annotations of a project as the API reports them (a `raw` export), oldest first."""
    from fastapi.testclient import TestClient

    from app.auth.models import TokenKind
    from app.auth.service import issue_token
    from app.db import session_scope
    from app.main import app

    admin = create_user("admin")
    with session_scope() as s:
        token, _ = issue_token(s, admin, TokenKind.api, 600)
    with TestClient(app) as client:
        r = client.get(
            f"/api/v1/projects/{project_id}/export",
            params={"schema": "raw", "format": "jsonl", "gold": "include", "source": "all"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    for row in rows:
        row["payload"] = json.loads(row["payload"])
        row["user_id"] = row["annotator_id"]
    return sorted(rows, key=lambda row: row["annotation_id"])


def skip_reasons(project_id: int) -> list[str]:
    rows = sql(
        "SELECT skip_reason FROM assignments WHERE project_id = %s AND status = 'skipped'"
        " ORDER BY id",
        project_id,
    )
    return [str(r[0]) for r in rows]


def response_texts(project_id: int) -> dict[int, str]:
    rows = sql(
        "SELECT r.id, r.text FROM responses r JOIN items i ON i.id = r.item_id"
        " WHERE i.project_id = %s",
        project_id,
    )
    return {int(r[0]): str(r[1]) for r in rows}


WAIT_NEXT = """
prev => {
  const t = document.getElementById('task');
  const done = !document.getElementById('done-panel').hidden;
  return done || (t.dataset.assignmentId && t.dataset.assignmentId !== prev && t.getAttribute('aria-busy') === 'false');
}
"""


def current_aid(page: Any) -> str:
    return str(page.evaluate("document.getElementById('task').dataset.assignmentId || ''"))


def wait_next(page: Any, prev: str) -> None:
    page.wait_for_function(WAIT_NEXT, arg=prev)


def wait_task(page: Any) -> str:
    wait_next(page, "")
    return current_aid(page)
