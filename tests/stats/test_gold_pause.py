"""Gold checks end to end: a wrong annotator is paused automatically, is served no task and is
told why; a researcher lifts the pause and earlier gold answers stop counting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.jobs import runner
from tests.helpers import Actor, sql, sql_value


def _gold_project(researcher: Actor, annotator: Actor) -> int:
    r = researcher.client.post(
        "/api/v1/projects", json={"name": "gold", "kind": "pairwise", "overlap": 1}
    )
    pid: int = r.json()["id"]
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    rows = [
        {
            "external_id": f"g{n}",
            "prompt": f"gold {n}",
            "responses": [{"text": "right"}, {"text": "wrong"}],
            "is_gold": True,
            "gold_answer": {"choice": "a"},
            "priority": 10,
        }
        for n in range(4)
    ] + [
        {"external_id": f"x{n}", "prompt": f"p {n}", "responses": [{"text": "a"}, {"text": "b"}]}
        for n in range(4)
    ]
    assert researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows).status_code == 201
    r = researcher.client.patch(
        f"/api/v1/projects/{pid}/quality-settings",
        json={"gold_warn_below": 0.8, "gold_pause_below": 0.6, "gold_min_answers": 3},
    )
    assert r.status_code == 200, r.text
    return pid


def _answer_wrong(annotator: Actor, pid: int) -> None:
    task = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next").json()
    wrong = next(r["id"] for r in task["item"]["responses"] if r["text"] == "wrong")
    choice = "a" if task["item"]["responses"][0]["id"] == wrong else "b"
    r = annotator.client.post(
        f"/api/v1/assignments/{task['assignment_id']}/submit", json={"payload": {"choice": choice}}
    )
    assert r.status_code == 201, r.text


def _run_refreshes() -> None:
    for (job_id,) in sql("SELECT id FROM jobs WHERE kind = 'stats.refresh' AND status = 'queued'"):
        assert runner.run_job(job_id) == "done"


def test_wrong_gold_answers_pause_the_annotator_until_lifted(
    researcher: Actor, make_user: Callable[..., Actor], app_client_factory: Any
) -> None:
    annotator = make_user("annotator")
    pid = _gold_project(researcher, annotator)
    for _ in range(3):
        _answer_wrong(annotator, pid)
    # The gold submit asked for a refresh (debounced: one job for the three answers).
    assert sql_value("SELECT count(*) FROM jobs WHERE kind = 'stats.refresh'") == 1
    _run_refreshes()
    r = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next")
    assert r.status_code == 403 and r.json()["error"] == "annotator_paused"
    assert "Gold accuracy 0%" in r.json()["detail"] and "lift" in r.json()["detail"]

    quality = researcher.client.get(f"/api/v1/projects/{pid}/annotators/{annotator.id}/quality")
    body = quality.json()
    assert body["gold"]["answered"] == 3 and body["gold"]["accuracy"] == 0.0
    assert body["gold"]["status"] == "pause" and body["pause"]["automatic"] is True
    [listed] = researcher.client.get(f"/api/v1/projects/{pid}/pauses").json()
    assert listed["user_id"] == annotator.id

    # The annotate page says why.
    page = app_client_factory()
    login = page.post(
        "/api/v1/auth/session", json={"email": annotator.email, "password": "correct horse battery"}
    )
    assert login.status_code == 200
    html = page.get(f"/projects/{pid}/annotate").text
    assert 'data-testid="paused"' in html and "Gold accuracy 0%" in html

    # A researcher lifts it: tasks are served again, and the old answers no longer pause.
    r = researcher.client.delete(f"/api/v1/projects/{pid}/annotators/{annotator.id}/pause")
    assert r.status_code == 204
    assert researcher.client.get(f"/api/v1/projects/{pid}/pauses").json() == []
    sql("UPDATE project_stats SET requested_at = now() - interval '1 minute'")
    assert researcher.client.post(f"/api/v1/projects/{pid}/stats/refresh").status_code == 202
    _run_refreshes()
    assert annotator.client.post(f"/api/v1/projects/{pid}/tasks/next").status_code == 200
    again = researcher.client.get(f"/api/v1/projects/{pid}/annotators/{annotator.id}/quality")
    assert again.json()["pause"] is None and again.json()["gold"]["answered"] == 3


def test_manual_pause_is_idempotent_and_settings_are_checked(
    researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    pid = _gold_project(researcher, annotator)
    url = f"/api/v1/projects/{pid}/annotators/{annotator.id}/pause"
    first = researcher.client.put(url, json={"reason": "Too fast."})
    second = researcher.client.put(url, json={"reason": "Other."})
    assert first.status_code == second.status_code == 200
    assert second.json()["reason"] == "Too fast." and second.json()["automatic"] is False
    r = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next")
    assert r.status_code == 403 and "Too fast." in r.json()["detail"]
    # Pausing at a higher accuracy than the warning would pause unwarned: refused, unchanged.
    r = researcher.client.patch(
        f"/api/v1/projects/{pid}/quality-settings", json={"gold_pause_below": 0.9}
    )
    assert r.status_code == 422 and "warn_below" in r.json()["detail"]
    got = researcher.client.get(f"/api/v1/projects/{pid}/quality-settings").json()
    assert got["gold_pause_below"] == 0.6
    r = researcher.client.patch(
        f"/api/v1/projects/{pid}/quality-settings", json={"review_below": 1.5}
    )
    assert r.status_code == 422
    stranger = make_user("annotator")
    r = researcher.client.put(
        f"/api/v1/projects/{pid}/annotators/{stranger.id}/pause", json={"reason": "x"}
    )
    assert r.status_code == 404
