"""Helpers for loop tests: a registered tiny policy, a pairwise project, a loop body, simulated
annotators (a gold reward's oracle) through the task API, and driving a loop in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.simulate.oracle import RewardOracle
from app.simulate.rewards import get_reward
from tests.exports.helpers import annotate
from tests.helpers import Actor, sql

ProjectFactory = Callable[..., dict[str, Any]]
TINY = {"checkpoint_every": 1000, "max_length": 64, "batch_size": 4}
PROMPTS = [f"question {i} w{i} w{i + 1}" for i in range(8)]


def register(admin: Actor, path: Path | str, name: str) -> int:
    r = admin.client.post("/api/v1/models", json={"name": name, "path": str(path)})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def loop_body(pid: int, policy: int, rm_base: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project_id": pid,
        "name": "tiny loop",
        "policy_model_id": policy,
        "reward_model": {"base_model_id": rm_base, "config": {"max_steps": 2, **TINY}},
        "update": {
            "kind": "dpo",
            "config": {"max_steps": 2, "evaluation": {"prompts": 0}, **TINY},
        },
        "iterations": 2,
        "prompts_per_iteration": 3,
        "prompts": PROMPTS[:6],
        "sampling": {"n": 3, "params": {"temperature": 1.0, "max_tokens": 6, "seed": 3}},
        "stop": {"label_deadline_seconds": 600, "min_labels": 2},
        "evaluation": {"num_prompts": 3, "max_new_tokens": 6, "gold_reward": "polite_concise"},
    }
    body.update(over)
    return body


def gold_annotator(reward: str = "polite_concise") -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A simulated annotator: picks the response the gold reward scores higher (as shown)."""
    oracle = RewardOracle(get_reward(reward))

    def decide(task: dict[str, Any]) -> dict[str, Any]:
        item = task["item"]
        knowledge = oracle.know(item)
        assert knowledge is not None
        return {"choice": "a" if knowledge.order[0] == item["responses"][0]["id"] else "b"}

    return decide


def label_all(annotator: Actor, pid: int) -> int:
    return len(annotate(annotator, pid, gold_annotator()))


def loop_out(actor: Actor, loop_id: int) -> dict[str, Any]:
    r = actor.client.get(f"/api/v1/loops/{loop_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def steps_of(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for it in out["iterations"] for s in it["steps"]]


def step_rows(loop_id: int) -> list[tuple[int, str, str, int | None]]:
    """(iteration, step, status, job id) of every step row, in order."""
    return [
        (int(r[0]), str(r[1]), str(r[2]), r[3])
        for r in sql(
            "SELECT iteration, step, status, job_id FROM loop_steps WHERE loop_id = %s ORDER BY id",
            loop_id,
        )
    ]


def drive(
    actor: Actor,
    annotator: Actor | None,
    pid: int,
    loop_id: int,
    *,
    rounds: int = 60,
    stop: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """Move the loop as workers would, in-process: run the current step's job, label what waits
    for labels, advance; until the loop ends (or `stop`)."""
    from app.loops.advance import advance_all
    from worker.tasks.jobs import run_job

    out = loop_out(actor, loop_id)
    for _ in range(rounds):
        advance_all()
        out = loop_out(actor, loop_id)
        if out["status"] not in ("running", "paused") or (stop is not None and stop(out)):
            return out
        current = steps_of(out)[-1]
        if current["status"] == "running" and current["job_id"] is not None:
            run_job(current["job_id"])
            # Jobs the step's job queued (judge runs of a route job) run too.
        elif current["status"] == "waiting" and annotator is not None:
            label_all(annotator, pid)
        elif out["status"] == "paused":
            return out
    raise AssertionError(f"loop {loop_id} did not end in {rounds} rounds: {out}")
