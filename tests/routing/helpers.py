"""Routed projects for the routing tests: a policy, a project pointing at it, held items."""

from __future__ import annotations

from typing import Any

from app.jobs import runner
from tests.helpers import Actor, sql_value

CATEGORIES = ("none", "mild", "moderate")


def rows(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    """Pairwise rows whose metadata cycles through safety categories."""
    return [
        {
            "external_id": f"{prefix}-{i}",
            "prompt": f"prompt {i}",
            "responses": [{"text": f"answer {i} a"}, {"text": f"answer {i} b, longer"}],
            # `truth` is what the simulated judge reads: the first response is better on even
            # items, the second on odd ones.
            "metadata": {
                "safety": CATEGORIES[i % 3],
                "n": i,
                "truth": {"choice": "a" if i % 2 == 0 else "b"},
            },
        }
        for i in range(n)
    ]


def policy(admin: Actor, strategy: str = "all_human", **fields: Any) -> dict[str, Any]:
    body = {
        "name": f"{strategy}-{sql_value('SELECT gen_random_uuid()::text')}",
        "strategy": strategy,
        **fields,
    }
    r = admin.client.post("/api/v1/routing-policies", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def routed_project(
    admin: Actor,
    researcher: Actor,
    policy_id: int,
    items: int = 0,
    members: tuple[Actor, ...] = (),
    judge_ids: tuple[int, ...] = (),
    **settings: Any,
) -> int:
    r = researcher.client.post(
        "/api/v1/projects", json={"name": "routed", "kind": "pairwise", **settings}
    )
    assert r.status_code == 201, r.text
    pid = int(r.json()["id"])
    r = admin.client.put(
        f"/api/v1/projects/{pid}/routing",
        json={"policy_id": policy_id, "judge_ids": list(judge_ids)},
    )
    assert r.status_code == 200, r.text
    for m in members:
        r = researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": m.id})
        assert r.status_code == 201, r.text
    if items:
        imported = researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(items))
        assert imported.status_code == 201, imported.text
    return pid


def route(actor: Actor, pid: int, **body: Any) -> dict[str, Any]:
    """Ask for a route job and run it here; its result."""
    r = actor.client.post(f"/api/v1/projects/{pid}/route", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    runner.run_job(job_id)
    job = actor.client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


def budget(actor: Actor, pid: int) -> dict[str, Any]:
    r = actor.client.get(f"/api/v1/projects/{pid}/routing/budget")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out
