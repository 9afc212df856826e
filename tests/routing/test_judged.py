"""Routing with a judge pool (app/judges, the simulated backend): the judges run first when the
strategy reads them, AI items get judged, and the learned router trains on dual-labelled items."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.jobs import runner
from tests.helpers import Actor, sql, sql_value
from tests.judges.helpers import simulated
from tests.routing.helpers import policy, route, routed_project, rows

# Sure on safety none and mild, a coin flip on moderate (its confidence then says so).
SAFETY_JUDGE: dict[str, Any] = {
    "accuracy": {"by": "safety", "accuracy": {"none": 1.0, "mild": 1.0, "moderate": 0.5}},
    "confidence_sure": 0.95,
    "confidence_unsure": 0.55,
}


def test_uncertainty_runs_the_judges_first_and_sends_unsure_items_to_humans(
    admin: Actor, researcher: Actor
) -> None:
    judge = simulated(admin, **SAFETY_JUDGE)
    p = policy(admin, "uncertainty", human_budget=1000, params={"margin_threshold": 0.3})
    pid = routed_project(admin, researcher, p["id"], items=30, judge_ids=(judge["id"],))
    result = route(researcher, pid)
    assert len(result["judge_jobs"]) == 1
    # The judge run ran inside the route job: every item has an output and an AI vote.
    assert sql_value("SELECT count(*) FROM judge_outputs WHERE project_id = %s", pid) == 30
    got = sql(
        "SELECT i.metadata->>'safety', d.decision, count(*) FROM routing_decisions d"
        " JOIN items i ON i.id = d.item_id WHERE d.project_id = %s GROUP BY 1, 2 ORDER BY 1, 2",
        pid,
    )
    assert got == [("mild", "ai", 10), ("moderate", "human", 10), ("none", "ai", 10)]
    reasons = {r for (r,) in sql("SELECT DISTINCT reason FROM routing_decisions")}
    assert reasons == {"uncertain", "confident"}
    # A second route finds nothing held, and judges nothing again.
    again = route(researcher, pid)
    assert again["items"] == 0
    assert sql_value("SELECT count(*) FROM judge_outputs WHERE project_id = %s", pid) == 30


def test_rules_judge_the_items_for_ai_after_deciding(admin: Actor, researcher: Actor) -> None:
    judge = simulated(admin)
    p = policy(
        admin,
        "rules",
        human_budget=1000,
        params={"rules": [{"key": "safety", "values": ["moderate"], "route": "human"}]},
    )
    pid = routed_project(admin, researcher, p["id"], items=9, judge_ids=(judge["id"],))
    preview = route(researcher, pid, dry_run=True)
    # Six items for AI, two calls each (both orders) at the judge's 0.001 per call.
    assert preview["ai_cost_estimate"] == 0.012
    result = route(researcher, pid)
    [job_id] = result["judge_jobs"]
    runner.run_job(job_id)
    judged = {
        r[0]
        for r in sql(
            "SELECT i.metadata->>'safety' FROM judge_outputs o JOIN items i ON i.id = o.item_id"
            " WHERE o.project_id = %s",
            pid,
        )
    }
    assert judged == {"none", "mild"}


def _annotate_all(annotator: Actor, pid: int, right: Callable[[int], bool]) -> int:
    """The annotator answers every task it is served: the truth when right(n) holds."""
    ids = {
        r[0]: (list(r[1]), r[2])
        for r in sql(
            "SELECT i.id, array_agg(r.id ORDER BY r.position), (i.metadata->>'n')::int"
            " FROM items i JOIN responses r ON r.item_id = i.id WHERE i.project_id = %s"
            " GROUP BY i.id",
            pid,
        )
    }
    done = 0
    while True:
        r = annotator.client.post(f"/api/v1/projects/{pid}/tasks/next")
        if r.status_code == 204:
            return done
        task = r.json()
        by_position, n = ids[task["item"]["id"]]
        better = by_position[0] if n % 2 == 0 else by_position[1]
        if not right(n):
            better = by_position[1] if better == by_position[0] else by_position[0]
        shown = [resp["id"] for resp in task["item"]["responses"]]
        choice = "a" if shown[0] == better else "b"
        r = annotator.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit",
            json={"payload": {"choice": choice}},
        )
        assert r.status_code == 201, r.text
        done += 1


def test_the_learned_router_falls_back_then_trains_on_dual_labelled_items(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    judge = simulated(admin, **SAFETY_JUDGE)
    p = policy(
        admin,
        "learned",
        human_budget=10_000,
        audit_fraction=0.5,
        params={"min_train": 20, "embedding": False, "margin_threshold": 0.3},
    )
    pid = routed_project(
        admin, researcher, p["id"], items=60, members=(annotator,), judge_ids=(judge["id"],)
    )
    first = route(researcher, pid)
    assert "fewer than min_train=20" in first["note"]
    assert first["model"] is None
    assert {"audit", "fallback_uncertain"} <= set(first["reasons"])
    assert _annotate_all(annotator, pid, lambda n: True) > 20

    researcher.client.post(f"/api/v1/projects/{pid}/items", json=rows(60, prefix="more"))
    second = route(researcher, pid)
    model = second["model"]
    assert model is not None and model["n_train"] > 20, second
    assert 0 <= model["validation"]["base_rate"] <= 1
    stored = sql(
        "SELECT policy_version_id, n_train, validation, octet_length(model) FROM routing_models"
    )
    assert len(stored) == 1
    assert stored[0][0] == p["latest"]["id"] and stored[0][1] == model["n_train"]
    assert stored[0][3] > 100
    # The model sends the coin-flip (moderate) items to humans first.
    got = dict(
        sql(
            "SELECT i.metadata->>'safety', avg(d.predicted_gain) FROM routing_decisions d"
            " JOIN items i ON i.id = d.item_id WHERE d.project_id = %s AND d.reason LIKE 'learned%%'"
            " GROUP BY 1",
            pid,
        )
    )
    assert got["moderate"] > got["none"] + 0.1


def test_an_item_routed_both_is_counted_once_per_source_in_exports(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    import json

    a, b = make_user("annotator"), make_user("annotator")
    judge = simulated(admin)
    p = policy(
        admin,
        "rules",
        human_budget=1000,
        params={"rules": [{"key": "safety", "values": ["mild"], "route": "both"}]},
    )
    pid = routed_project(
        admin, researcher, p["id"], items=6, members=(a, b), judge_ids=(judge["id"],), overlap=2
    )
    result = route(researcher, pid)
    assert result["counts"] == {"human": 0, "ai": 4, "both": 2}
    for job_id in result["judge_jobs"]:
        runner.run_job(job_id)
    # Both annotators label the two items routed both; re-running the judges adds nothing.
    assert _annotate_all(a, pid, lambda n: True) == 2
    assert _annotate_all(b, pid, lambda n: True) == 2
    again = researcher.client.post(
        f"/api/v1/projects/{pid}/judge-runs", json={"judge_id": judge["id"], "items": "all"}
    )
    runner.run_job(again.json()["job_id"])
    r = researcher.client.get(
        f"/api/v1/projects/{pid}/export", params={"schema": "raw", "format": "jsonl"}
    )
    assert r.status_code == 200, r.text
    rows_out = [json.loads(line) for line in r.text.splitlines() if line]
    per_item: dict[int, list[str]] = {}
    for row in rows_out:
        per_item.setdefault(row["item_id"], []).append(row["source"])
    both = {i for (i,) in sql("SELECT item_id FROM routing_decisions WHERE decision = 'both'")}
    for item_id, sources in per_item.items():
        if item_id in both:
            assert sorted(sources) == ["ai", "human", "human"]
        else:
            assert sources == ["ai"]
    assert len(per_item) == 6


def test_the_agreement_target_is_unanimity_of_the_overlaps_votes(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    from app.db import get_engine, session_scope
    from app.routing.route import load_config, training_set

    annotators = [make_user("annotator") for _ in range(3)]
    judge = simulated(admin, **SAFETY_JUDGE)
    p = policy(
        admin,
        "learned",
        human_budget=10_000,
        human_overlap=3,
        audit_fraction=1.0,
        params={"min_train": 20, "embedding": False},
    )
    pid = routed_project(
        admin,
        researcher,
        p["id"],
        items=12,
        members=tuple(annotators),
        judge_ids=(judge["id"],),
    )
    route(researcher, pid)
    # Two annotators always right; the third right on items 0 to 5 only.
    assert _annotate_all(annotators[0], pid, lambda n: True) == 12
    assert _annotate_all(annotators[1], pid, lambda n: True) == 12
    assert _annotate_all(annotators[2], pid, lambda n: n < 6) == 12
    with session_scope() as s:
        cfg = load_config(s, pid)
    with get_engine().connect() as conn:
        ts = training_set(conn, cfg)
    assert ts.agreement_votes == 3
    n_of = {
        i: n
        for i, n in sql("SELECT id, (metadata->>'n')::int FROM items WHERE project_id = %s", pid)
    }
    got = {n_of[int(i)]: int(a) for i, a in zip(ts.agree_signals.item_ids, ts.agree, strict=True)}
    assert got == {n: int(n < 6) for n in range(12)}
    # Every item has a human majority (2 or 3 of 3) and a judge output: all are dual-labelled.
    assert len(ts.y) == 12
