"""Helpers for judge tests: projects with simulated truths, judges, and runs executed inline."""

from __future__ import annotations

from typing import Any

from app.jobs import runner
from tests.helpers import Actor, sql

SPAN_TEXT = "Paris is the capital of Germany and the sun orbits the earth."


def rows(kind: str, n: int) -> list[dict[str, Any]]:
    """Items whose metadata holds the truth the simulated judge reads (`truth`)."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        if kind == "pairwise":
            responses = [{"text": f"good answer {i}"}, {"text": f"a much longer bad answer {i}"}]
            truth: dict[str, Any] = {"choice": "a" if i % 2 == 0 else "b"}
        elif kind == "ranking":
            responses = [{"text": f"r{i}.{j}", "id": f"r{j}"} for j in range(3)]
            truth = {"order": [2, 0, 1]}
        elif kind == "span":
            responses = [{"text": SPAN_TEXT}]
            truth = {"spans": [{"start": 24, "end": 31, "label": "bad"}]}
        else:
            responses = [{"text": f"answer {i}"}]
            truth = {"rating": 1 + i % 7}
        out.append(
            {
                "external_id": f"{kind}-{i}",
                "prompt": f"question {i}",
                "responses": responses,
                "metadata": {"truth": truth, "category": "easy" if i % 2 else "hard"},
            }
        )
    return out


def make_project(researcher: Actor, kind: str, n: int, **settings: Any) -> int:
    body: dict[str, Any] = {"name": f"judged {kind}", "kind": kind, **settings}
    if kind == "span":
        body.setdefault("span_labels", ["bad", "unclear"])
    r = researcher.client.post("/api/v1/projects", json=body)
    assert r.status_code == 201, r.text
    pid = int(r.json()["id"])
    r = researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(kind, n))
    assert r.status_code == 201, r.text
    return pid


def simulated(admin: Actor, name: str = "sim", **params: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "backend": "simulated",
        "model": "sim",
        "params": {"truth": {"metadata_key": "truth"}, "accuracy": 1.0, **params},
        "costs": {"per_call": 0.001, "per_1k_input": 0.5, "per_1k_output": 1.5},
    }
    r = admin.client.post("/api/v1/judges", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def start(actor: Actor, pid: int, judge_id: int, **body: Any) -> dict[str, Any]:
    r = actor.client.post(f"/api/v1/projects/{pid}/judge-runs", json={"judge_id": judge_id, **body})
    assert r.status_code == 202, r.text
    return dict(r.json())


def run_inline(actor: Actor, pid: int, judge_id: int, **body: Any) -> dict[str, Any]:
    """Start a run, execute its job in this process, and return the run as the API reads it."""
    queued = start(actor, pid, judge_id, **body)
    runner.run_job(queued["job_id"])
    r = actor.client.get(f"/api/v1/projects/{pid}/judge-runs/{queued['run_id']}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def ai_votes(pid: int) -> list[tuple[int, int, dict[str, Any], list[int]]]:
    """(item id, judge id, payload, shown order) of the project's AI annotations."""
    return [
        (r[0], r[1], r[2], list(r[3]))
        for r in sql(
            "SELECT item_id, judge_id, payload, shown_order FROM annotations"
            " WHERE project_id = %s AND source = 'ai' ORDER BY item_id",
            pid,
        )
    ]


def outputs(pid: int) -> list[dict[str, Any]]:
    cols = ("item_id", "status", "probability", "consistent", "raw", "annotation_id", "error")
    return [
        dict(zip(cols, r, strict=True))
        for r in sql(
            f"SELECT {', '.join(cols)} FROM judge_outputs WHERE project_id = %s ORDER BY item_id",
            pid,
        )
    ]


def response_ids(pid: int) -> dict[int, list[int]]:
    return {
        r[0]: list(r[1])
        for r in sql(
            "SELECT i.id, array_agg(r.id ORDER BY r.position) FROM items i"
            " JOIN responses r ON r.item_id = i.id WHERE i.project_id = %s GROUP BY i.id",
            pid,
        )
    }
