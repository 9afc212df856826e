"""A two-iteration loop on the CPU: tiny models, simulated annotators following a gold reward
through the task API, every step through its real job; then pause, resume and cancel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from tests.helpers import Actor, sql  # noqa: E402
from tests.loops.helpers import (  # noqa: E402
    ProjectFactory,
    drive,
    loop_body,
    register,
    step_rows,
    steps_of,
)
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402

STEPS = ["generate", "route", "labels", "snapshot", "reward_model", "update", "evaluate"]


def test_two_iterations_train_and_evaluate_each_on_their_own(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    policy = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    r = researcher.client.post("/api/v1/loops", json=loop_body(pid, policy, policy))
    assert r.status_code == 202, r.text
    queued = r.json()
    loop_id = queued["id"]
    assert step_rows(loop_id) == [(1, "generate", "running", queued["job_id"])]

    out = drive(researcher, annotator, pid, loop_id)
    assert out["status"] == "succeeded", out
    rows = step_rows(loop_id)
    # Every step once per iteration, in order; route is skipped (no routing, no judges).
    assert [(i, s) for i, s, _, _ in rows] == [(i, s) for i in (1, 2) for s in STEPS]
    assert all(st == ("skipped" if s == "route" else "succeeded") for _, s, st, _ in rows)
    jobs = [j for *_, j in rows if j is not None]
    assert len(jobs) == len(set(jobs)) == 10  # generate, snapshot, rm, update, evaluate x2
    assert {r[0] for r in sql("SELECT status FROM jobs WHERE id = ANY(%s)", jobs)} == {"succeeded"}

    one, two = out["iterations"]
    # Iteration 2 samples with the policy iteration 1 trained; each trained its own models.
    assert one["policy_model_id"] == policy
    assert two["policy_model_id"] == one["new_policy_model_id"] != policy
    assert two["new_policy_model_id"] not in (policy, one["new_policy_model_id"])
    assert one["reward_model_id"] != two["reward_model_id"]
    version = researcher.client.get(f"/api/v1/models/{two['new_policy_model_id']}").json()
    assert version["kind"] == "policy" and version["parent_id"] == one["new_policy_model_id"]

    # The generated items carry the loop's tag and the version that sampled them.
    tagged = sql(
        "SELECT i.metadata->>'loop_iteration', array_agg(DISTINCT r.model_version_id)"
        " FROM items i JOIN responses r ON r.item_id = i.id"
        " WHERE i.project_id = %s AND i.metadata @> %s::jsonb GROUP BY 1 ORDER BY 1",
        pid,
        f'{{"loop_id": {loop_id}}}',
    )
    assert tagged == [("1", [policy]), ("2", [one["new_policy_model_id"]])]
    # Iteration 2's snapshot holds both iterations' labels (cumulative), iteration 1's only its.
    snaps = [s for s in steps_of(out) if s["step"] == "snapshot"]
    assert snaps[1]["links"]["rows"] > snaps[0]["links"]["rows"] > 0
    # Conversational rows: the policy sampled its items through its chat template, and its
    # update trains through it too (standard rows trained DPO on bare prompt + response).
    styles = sql(
        "SELECT options->>'style' FROM exports WHERE id = ANY(%s)",
        [s["links"]["export_id"] for s in snaps],
    )
    assert [s for (s,) in styles] == ["conversational", "conversational"]

    for it in (one, two):
        m = it["metrics"]
        assert m["iteration"] == it["iteration"] and m["eval_prompts"] == 3
        assert 0 <= m["reward_model"]["heldout_accuracy"] <= 1
        for by in ("by_reward_model", "by_gold_reward"):
            assert 0 <= m[by]["win_rate_vs_iteration_0"] <= 1
            assert 0 <= m[by]["win_rate_vs_previous"] <= 1
        assert m["by_gold_reward"]["reward"] == "polite_concise@1"
        assert m["length"]["mean_words"] >= 0 and "drift_vs_iteration_0" in m["length"]
    # Iteration 1's policy against iteration 0 is the same comparison as against "previous".
    assert (
        one["metrics"]["by_gold_reward"]["win_rate_vs_iteration_0"]
        == one["metrics"]["by_gold_reward"]["win_rate_vs_previous"]
    )

    listed = researcher.client.get("/api/v1/loops", params={"project_id": pid}).json()
    assert [x["id"] for x in listed["items"]] == [loop_id]
    assert listed["items"][0]["status"] == "succeeded"


SAMPLING = {"n": 2, "max_new_tokens": 4, "max_prompts": 3, "prompts_per_batch": 4}
UPDATES = {
    "expert_iteration": {
        "max_steps": 2,
        "sampling": SAMPLING,
        "evaluation": {"prompts": 0},
        "checkpoint_every": 1000,
        "max_length": 64,
        "batch_size": 4,
    },
    "best_of_n": {"sampling": SAMPLING},
}


@pytest.mark.parametrize("kind", list(UPDATES))
def test_other_updates_and_a_simulated_judge_of_the_gold_reward(
    kind: str,
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> None:
    # Words the gold reward (polite_concise) scores, so that it often decides a pair.
    words = [*vocabulary(), "please thanks"]
    policy = register(admin, save_tiny_model(tmp_path / "policy", words), "tiny policy")
    judge = admin.client.post(
        "/api/v1/judges",
        json={
            "name": f"gold judge {kind}",
            "backend": "simulated",
            "model": "sim",
            "params": {"truth": {"gold_reward": "polite_concise"}, "accuracy": 1.0},
        },
    )
    assert judge.status_code == 201, judge.text
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    body = loop_body(pid, policy, policy, iterations=1)
    body["update"] = {"kind": kind, "config": UPDATES[kind]}
    body["evaluation"]["judge_id"] = judge.json()["id"]
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 202, r.text
    out = drive(researcher, annotator, pid, r.json()["id"])
    assert out["status"] == "succeeded", out
    it = out["iterations"][0]
    m = it["metrics"]
    if kind == "best_of_n":  # no new weights: the policy samples n and keeps the RM's best
        assert it["new_policy_model_id"] == policy and m["best_of_n"] == 2
    else:
        assert it["new_policy_model_id"] != policy
    by_judge, by_gold = m["by_judge"], m["by_gold_reward"]
    assert by_judge["judge"]["id"] == judge.json()["id"]
    # A judge that always follows the gold reward agrees with it wherever the gold decides;
    # a gold tie (counted half) leaves the simulated judge guessing.
    for against in ("iteration_0", "previous"):
        judged, gold = by_judge[f"vs_{against}"], by_gold[f"vs_{against}"]
        assert judged["pairs"] == 3 and judged["unparsed"] == 0, judged
        gap = abs(by_judge[f"win_rate_vs_{against}"] - by_gold[f"win_rate_vs_{against}"])
        assert gap <= 0.5 * gold["ties"] / 3 + 1e-9, (by_judge, by_gold)
