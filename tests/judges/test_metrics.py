"""Judge metrics against human votes: agreement, kappa, swaps, length bias, calibration, cost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import Actor
from tests.judges.helpers import make_project, run_inline, simulated


def truth_choice(task: dict[str, Any]) -> dict[str, Any]:
    """What the truth says (`a` for even items in import order), as positions shown."""
    i = int(task["item"]["external_id"].split("-")[1])
    winner_text = ("good answer " if i % 2 == 0 else "a much longer bad answer ") + str(i)
    shown = [r["text"] for r in task["item"]["responses"]]
    return {"choice": "a" if shown[0] == winner_text else "b"}


def annotate_all(
    actor: Actor, pid: int, decide: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    while True:
        r = actor.client.post(f"/api/v1/projects/{pid}/tasks/next")
        if r.status_code == 204:
            return
        task = r.json()
        s = actor.client.post(
            f"/api/v1/assignments/{task['assignment_id']}/submit",
            json={"payload": {"kind": "pairwise", **decide(task)}},
        )
        assert s.status_code == 201, s.text


def test_pairwise_metrics_against_the_human_majority(
    admin: Actor, researcher: Actor, make_user: Callable[..., Actor]
) -> None:
    annotator = make_user("annotator")
    n = 40
    pid = make_project(researcher, "pairwise", n)
    r = researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": annotator.id})
    assert r.status_code == 201
    annotate_all(annotator, pid, truth_choice)
    judge = simulated(admin, accuracy=0.75, position_bias=0.5, length_bias=1.0)
    run = run_inline(researcher, pid, judge["id"])
    assert run["done"] == n
    r = researcher.client.get(f"/api/v1/judges/{judge['id']}/metrics", params={"project_id": pid})
    assert r.status_code == 200, r.text
    m = r.json()
    assert (m["outputs"], m["kind"]) == (n, "pairwise")
    # Humans follow the truth: the judge agrees on its sure items and on some guesses.
    assert m["overlap"] == m["votes"] > 0
    assert 0.5 < m["agreement"]["value"] <= 1.0 and m["kappa"]["value"] > 0.2
    assert m["agreement"]["low"] <= m["agreement"]["value"] <= m["agreement"]["high"]
    # A judge led by length, not position, keeps its answer when the order is swapped.
    assert m["position_consistency"]["value"] == 1.0
    # This judge leans to the longer response when unsure; humans follow the truth (half
    # the winners are the longer one).
    assert m["length_bias_judge"]["value"] > m["length_bias_humans"]["value"]
    assert m["length_bias_humans"]["value"] == pytest.approx(0.5)
    assert 0.0 <= m["brier"]["value"] < 0.25 and m["reliability"]
    assert sum(b["count"] for b in m["reliability"]) == m["brier"]["n"]
    assert m["unparsable_rate"] == 0.0
    assert m["cost_total"] == pytest.approx(run["cost"])
    assert m["latency_p50_s"] is not None and m["latency_p95_s"] >= m["latency_p50_s"]


def test_metrics_need_a_visible_project(admin: Actor, researcher: Actor, make_user: Any) -> None:
    pid = make_project(researcher, "critique", 2)
    judge = simulated(admin)
    outsider = make_user("researcher")
    r = outsider.client.get(f"/api/v1/judges/{judge['id']}/metrics", params={"project_id": pid})
    assert r.status_code == 404
    r = researcher.client.get(f"/api/v1/judges/{judge['id']}/metrics", params={"project_id": pid})
    assert r.status_code == 200 and r.json()["outputs"] == 0
    r = researcher.client.get(f"/api/v1/judges/{judge['id']}/metrics")
    assert r.status_code == 422
