"""The flow: held items are never served; a route job decides, records and releases them."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import Actor, sql, sql_value
from tests.routing.helpers import budget, policy, route, routed_project, rows


def _next(annotator: Actor, pid: int) -> int:
    return annotator.client.post(f"/api/v1/projects/{pid}/tasks/next").status_code


def test_held_items_are_not_served_until_routed_to_humans(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = policy(admin, "all_human", human_budget=100)
    pid = routed_project(admin, researcher, p["id"], items=3, members=(annotator,), overlap=2)
    assert sql("SELECT DISTINCT routing, remaining FROM items WHERE project_id = %s", pid) == [
        ("held", 0)
    ]
    assert _next(annotator, pid) == 204
    # An overlap change does not open held items.
    researcher.client.patch(f"/api/v1/projects/{pid}", json={"overlap": 3})
    assert sql_value("SELECT max(remaining) FROM items WHERE project_id = %s", pid) == 0
    result = route(researcher, pid)
    assert result["counts"] == {"human": 3, "ai": 0, "both": 0}
    assert result["human_units"] == 9  # overlap 3 now
    assert sql("SELECT DISTINCT routing, remaining FROM items WHERE project_id = %s", pid) == [
        ("human", 3)
    ]
    assert _next(annotator, pid) == 200
    # Items imported later are held again, routed by the next job.
    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(2, prefix="late"))
    assert (
        sql_value("SELECT count(*) FROM items WHERE project_id = %s AND routing = 'held'", pid) == 2
    )


def test_items_routed_to_ai_are_never_served_to_humans(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    p = policy(admin, "all_ai", human_budget=100)
    pid = routed_project(admin, researcher, p["id"], items=4, members=(annotator,))
    result = route(researcher, pid)
    assert result["counts"] == {"human": 0, "ai": 4, "both": 0}
    assert _next(annotator, pid) == 204
    researcher.client.patch(f"/api/v1/projects/{pid}", json={"overlap": 5})
    assert _next(annotator, pid) == 204
    assert budget(researcher, pid)["reserved"] == 0


def test_rules_route_by_metadata_and_the_audit_sample_goes_to_both(
    admin: Actor, researcher: Actor
) -> None:
    p = policy(
        admin,
        "rules",
        human_budget=1000,
        params={
            "rules": [
                {"key": "safety", "values": ["moderate"], "route": "human"},
                {"key": "safety", "values": ["mild"], "route": "both"},
            ]
        },
    )
    pid = routed_project(admin, researcher, p["id"], items=30)
    result = route(researcher, pid)
    assert result["counts"] == {"human": 10, "ai": 10, "both": 10}
    decided = sql(
        "SELECT i.metadata->>'safety', d.decision, d.reason FROM routing_decisions d"
        " JOIN items i ON i.id = d.item_id WHERE d.project_id = %s",
        pid,
    )
    assert {(s, d, r) for s, d, r in decided} == {
        ("moderate", "human", "rule:1"),
        ("mild", "both", "rule:2"),
        ("none", "ai", "rule:default"),
    }
    r = researcher.client.get(
        f"/api/v1/projects/{pid}/routing/decisions", params={"reason": "rule:2", "limit": 4}
    )
    page = r.json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    assert {d["decision"] for d in page["items"]} == {"both"}
    r = researcher.client.get(
        f"/api/v1/projects/{pid}/routing/decisions",
        params={"reason": "rule:2", "limit": 50, "cursor": page["next_cursor"]},
    )
    assert len(r.json()["items"]) == 6


def test_random_routes_about_its_fraction_and_audit_items_to_both(
    admin: Actor, researcher: Actor
) -> None:
    p = policy(admin, "random", human_budget=10_000, params={"fraction": 0.3}, audit_fraction=0.2)
    pid = routed_project(admin, researcher, p["id"], items=300)
    result = route(researcher, pid)
    counts = result["counts"]
    assert sum(counts.values()) == 300
    assert 30 <= counts["both"] <= 90  # audit 20%
    assert 40 <= counts["human"] <= 130  # 30% of the rest
    audit = sql_value(
        "SELECT count(*) FROM routing_decisions WHERE project_id = %s AND reason = 'audit'", pid
    )
    assert audit == counts["both"]


def test_the_budget_caps_humans_and_the_rest_goes_to_ai(admin: Actor, researcher: Actor) -> None:
    # 7 units at overlap 2: three items (6 units); the others are over budget.
    p = policy(admin, "all_human", human_budget=7, human_cost=1)
    pid = routed_project(admin, researcher, p["id"], items=5, overlap=2)
    result = route(researcher, pid)
    assert result["counts"] == {"human": 3, "ai": 2, "both": 0}
    assert result["reasons"] == {"all_human": 3, "over_budget": 2}
    assert budget(researcher, pid) | {"reconciled_at": None} == {
        "total": 7.0,
        "reserved": 6.0,
        "spent": 0.0,
        "available": 1.0,
        "reconciled_at": None,
    }


def test_min_human_fractions_per_category_are_met(admin: Actor, researcher: Actor) -> None:
    p = policy(admin, "all_ai", human_budget=1000, min_human={"safety": {"moderate": 0.5}})
    pid = routed_project(admin, researcher, p["id"], items=30)
    route(researcher, pid)
    got = sql(
        "SELECT i.metadata->>'safety', count(*) FROM routing_decisions d JOIN items i"
        " ON i.id = d.item_id WHERE d.project_id = %s AND d.decision = 'human' GROUP BY 1",
        pid,
    )
    assert got == [("moderate", 5)]


def test_a_dry_run_previews_and_changes_nothing(admin: Actor, researcher: Actor) -> None:
    p = policy(
        admin,
        "rules",
        human_budget=4,
        params={"rules": [{"key": "safety", "values": ["moderate", "mild"], "route": "human"}]},
    )
    pid = routed_project(admin, researcher, p["id"], items=12)
    preview = route(researcher, pid, dry_run=True, sample=12)
    assert preview["dry_run"] is True
    assert preview["counts"] == {"human": 4, "ai": 8, "both": 0}
    assert preview["human_cost"] == 4.0
    assert preview["ai_cost_estimate"] == 0  # no judges in the pool
    assert 0 < preview["predicted_accuracy"] <= 1
    assert preview["examples"][0]["decision"] == "human"
    assert {e["reason"] for e in preview["examples"]} >= {"rule:1", "over_budget"}
    assert sql_value("SELECT count(*) FROM routing_decisions") == 0
    assert budget(researcher, pid)["reserved"] == 0
    assert sql_value("SELECT count(*) FROM items WHERE routing = 'held'") == 12
    r = researcher.client.post(f"/api/v1/projects/{pid}/route", json={"sample": 3})
    assert r.status_code == 422


def test_a_policy_change_midway_leaves_earlier_decisions_with_their_version(
    admin: Actor, researcher: Actor
) -> None:
    p = policy(admin, "all_human", human_budget=100)
    pid = routed_project(admin, researcher, p["id"], items=3)
    route(researcher, pid)
    v2 = admin.client.patch(f"/api/v1/routing-policies/{p['id']}", json={"strategy": "all_ai"})
    assert v2.status_code == 200
    admin.client.put(f"/api/v1/projects/{pid}/routing", json={"policy_id": p["id"]})
    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(2, prefix="new"))
    route(researcher, pid)
    got = sql(
        "SELECT v.version, d.decision, count(*) FROM routing_decisions d"
        " JOIN routing_policy_versions v ON v.id = d.policy_version_id"
        " WHERE d.project_id = %s GROUP BY 1, 2 ORDER BY 1",
        pid,
    )
    assert got == [(1, "human", 3), (2, "ai", 2)]


def test_route_after_import_runs_by_itself(admin: Actor, researcher: Actor) -> None:
    from app.jobs import runner

    p = policy(admin, "all_ai", route_after_import=True)
    pid = routed_project(admin, researcher, p["id"], items=3)
    [(job_id,)] = sql("SELECT id FROM jobs WHERE kind = 'routing.route' AND project_id = %s", pid)
    runner.run_job(job_id)
    assert sql_value("SELECT count(*) FROM routing_decisions WHERE project_id = %s", pid) == 3


def test_spend_is_reconciled_as_human_annotations_arrive(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    a, b = make_user("annotator"), make_user("annotator")
    p = policy(admin, "all_human", human_budget=20, human_cost=2)
    pid = routed_project(admin, researcher, p["id"], items=2, members=(a, b), overlap=2)
    route(researcher, pid)
    assert budget(researcher, pid)["reserved"] == 8
    for who in (a, b):
        task = who.client.post(f"/api/v1/projects/{pid}/tasks/next").json()
        r = who.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit", json={"payload": {"choice": "a"}}
        )
        assert r.status_code == 201
    # A skip gives the slot back to the pool: still reserved, not spent.
    task = a.client.post(f"/api/v1/projects/{pid}/tasks/next").json()
    a.client.post(f"/api/v1/assignments/{task['assignment_id']}/skip", json={"reason": "x"})
    got = budget(researcher, pid)
    assert (got["spent"], got["reserved"], got["available"]) == (4, 4, 12)
    # Lowering the overlap to 1 leaves each item (one vote each) nothing more to spend: the
    # rest of its reservation is released.
    researcher.client.patch(f"/api/v1/projects/{pid}", json={"overlap": 1})
    got = budget(researcher, pid)
    assert (got["spent"], got["reserved"], got["available"]) == (4, 0, 16)
    status = researcher.client.get(f"/api/v1/projects/{pid}/routing").json()
    assert status["decisions"] == {"human": 2}
    assert status["budget"]["spent"] == 4
