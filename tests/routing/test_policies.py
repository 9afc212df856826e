"""Policies: versioned, validated per strategy, attached to projects; bad ones are a clear 422."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Actor
from tests.routing.helpers import policy, routed_project, rows


def test_a_policy_is_created_with_version_1_and_edits_add_versions(admin: Actor) -> None:
    p = policy(admin, "random", params={"fraction": 0.3}, human_budget=100, audit_fraction=0.1)
    assert p["latest"]["version"] == 1
    assert p["latest"]["params"] == {"fraction": 0.3}
    r = admin.client.patch(f"/api/v1/routing-policies/{p['id']}", json={"human_budget": 50})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [v["version"] for v in out["versions"]] == [2, 1]
    assert out["latest"]["human_budget"] == 50
    assert out["latest"]["params"] == {"fraction": 0.3}  # carried over
    assert out["versions"][1]["human_budget"] == 100  # version 1 unchanged
    # Another strategy starts from its own defaults.
    r = admin.client.patch(f"/api/v1/routing-policies/{p['id']}", json={"strategy": "uncertainty"})
    assert r.status_code == 200, r.text
    assert r.json()["latest"]["params"]["margin_threshold"] == 0.3


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"strategy": "all_human", "human_budget": -1}, "human_budget"),
        ({"strategy": "by_magic"}, "strategy"),
        ({"strategy": "all_ai", "audit_fraction": 1.5}, "audit_fraction"),
        ({"strategy": "random"}, "fraction"),
        ({"strategy": "random", "params": {"fraction": 2}}, "fraction"),
        ({"strategy": "rules", "params": {"rules": [{"values": ["x"], "route": "human"}]}}, "key"),
        ({"strategy": "rules", "params": {"rules": []}}, "rules"),
        ({"strategy": "uncertainty", "params": {"margin": 0.2}}, "margin"),
        ({"strategy": "learned", "params": {"uncertainty_weight": -1}}, "uncertainty_weight"),
        ({"strategy": "all_human", "human_cost": -3}, "human_cost"),
        ({"strategy": "all_human", "min_human": {"safety": {"moderate": 1.2}}}, "min_human"),
    ],
)
def test_bad_policies_are_a_422_naming_the_problem(
    admin: Actor, body: dict[str, Any], where: str
) -> None:
    r = admin.client.post("/api/v1/routing-policies", json={"name": "bad", **body})
    assert r.status_code == 422, r.text
    assert where in r.text
    assert admin.client.get("/api/v1/routing-policies").json()["items"] == []


def test_rules_on_a_metadata_key_no_item_has_are_refused(admin: Actor, researcher: Actor) -> None:
    r = researcher.client.post("/api/v1/projects", json={"name": "p", "kind": "pairwise"})
    pid = r.json()["id"]
    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(3))
    p = policy(
        admin,
        "rules",
        params={"rules": [{"key": "language", "values": ["fr"], "route": "human"}]},
    )
    r = admin.client.put(f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"]})
    assert r.status_code == 422, r.text
    assert "language" in r.json()["detail"]
    assert r.json()["error"] == "invalid"


def test_signal_strategies_need_a_pairwise_project(admin: Actor, researcher: Actor) -> None:
    r = researcher.client.post("/api/v1/projects", json={"name": "p", "kind": "critique"})
    p = policy(admin, "uncertainty")
    r = admin.client.put(f"/api/v1/projects/{r.json()['id']}/routing", json={"policy_id": p["id"]})
    assert r.status_code == 422
    assert "pairwise" in r.json()["detail"]


def test_unknown_judges_and_versions_are_refused(admin: Actor, researcher: Actor) -> None:
    p = policy(admin)
    pid = routed_project(admin, researcher, p["id"])
    r = admin.client.put(
        f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"], "judge_ids": [999]}
    )
    assert r.status_code == 422
    assert "999" in r.json()["detail"]
    r = admin.client.put(
        f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"], "version": 7}
    )
    assert r.status_code == 404


def test_only_admins_manage_policies(researcher: Actor, admin: Actor) -> None:
    r = researcher.client.post("/api/v1/routing-policies", json={"name": "x", "strategy": "all_ai"})
    assert r.status_code == 403
    p = policy(admin)
    pid = routed_project(admin, researcher, p["id"])
    r = researcher.client.put(f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"]})
    assert r.status_code == 403
    # ... but researchers of the project read its routing and may route.
    assert researcher.client.get(f"/api/v1/projects/{pid}/routing").status_code == 200


def test_a_budget_below_what_is_committed_is_refused(admin: Actor, researcher: Actor) -> None:
    from tests.routing.helpers import budget, route

    p = policy(admin, human_budget=10, human_cost=1)
    pid = routed_project(admin, researcher, p["id"], items=4, overlap=2)
    route(researcher, pid)
    assert budget(researcher, pid)["reserved"] == 8
    admin.client.patch(f"/api/v1/routing-policies/{p['id']}", json={"human_budget": 5})
    r = admin.client.put(f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"]})
    assert r.status_code == 409
    assert r.json()["error"] == "budget_below_committed"
