"""Pause, resume and cancel a loop; the label deadline's stop rule (stop, or go on with the
labels there are)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from app.loops.advance import advance_all  # noqa: E402
from tests.exports.helpers import annotate  # noqa: E402
from tests.helpers import Actor  # noqa: E402
from tests.jobs.helpers import job_row  # noqa: E402
from tests.loops.helpers import (  # noqa: E402
    ProjectFactory,
    gold_annotator,
    loop_body,
    loop_out,
    register,
    step_rows,
)
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from worker.tasks.jobs import run_job  # noqa: E402


@pytest.fixture
def setup(
    admin: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    tmp_path: Path,
) -> tuple[int, int, Actor]:
    policy = register(admin, save_tiny_model(tmp_path / "policy", vocabulary()), "tiny policy")
    annotator = make_user("annotator")
    pid = int(project_factory("pairwise", items=0, members=(annotator,), overlap=1)["id"])
    return pid, policy, annotator


def _start(actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = actor.client.post("/api/v1/loops", json=body)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


def _post(actor: Actor, loop_id: int, action: str, status: int = 200) -> dict[str, Any]:
    r = actor.client.post(f"/api/v1/loops/{loop_id}/{action}")
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


def test_pause_waits_after_the_running_step_resume_goes_on_cancel_ends_it(
    setup: tuple[int, int, Actor], researcher: Actor, admin: Actor, make_user: Callable[..., Actor]
) -> None:
    pid, policy, _ = setup
    queued = _start(researcher, loop_body(pid, policy, policy))
    loop_id = queued["id"]
    # Another researcher of the project may look, not steer.
    other = make_user("researcher")
    researcher.client.post(f"/api/v1/projects/{pid}/members", json={"user_id": other.id})
    assert other.client.get(f"/api/v1/loops/{loop_id}").status_code == 200
    r = other.client.post(f"/api/v1/loops/{loop_id}/pause")
    assert r.status_code == 403 and "creator" in r.json()["detail"], r.text

    assert _post(researcher, loop_id, "pause")["status"] == "paused"
    assert _post(researcher, loop_id, "pause")["status"] == "paused"  # again: no change
    assert run_job(queued["job_id"]) == "done"  # the running step finishes
    advance_all()
    assert step_rows(loop_id) == [(1, "generate", "succeeded", queued["job_id"])]
    advance_all()  # a paused loop starts nothing, however often it is advanced
    assert len(step_rows(loop_id)) == 1

    out = _post(researcher, loop_id, "resume")
    assert out["status"] == "running"
    # Resume goes on at once: route (no routing, no judges: skipped), then labels wait.
    assert [(s, st) for _, s, st, _ in step_rows(loop_id)] == [
        ("generate", "succeeded"),
        ("route", "skipped"),
        ("labels", "waiting"),
    ]
    assert out["pending"]["items"] >= 1 and out["pending"]["labelled"] == 0
    assert out["pending"]["waiting_human"] == out["pending"]["items"]

    out = _post(admin, loop_id, "cancel")
    assert out["status"] == "cancelled" and out["reason"].startswith("cancelled by")
    assert step_rows(loop_id)[-1][1:3] == ("labels", "cancelled")
    assert _post(researcher, loop_id, "cancel")["status"] == "cancelled"  # idempotent
    r = researcher.client.post(f"/api/v1/loops/{loop_id}/resume")
    assert r.status_code == 409 and "cancelled" in r.json()["detail"]
    advance_all()
    assert len(step_rows(loop_id)) == 3


def test_cancel_cancels_the_running_steps_job(
    setup: tuple[int, int, Actor], researcher: Actor
) -> None:
    pid, policy, _ = setup
    queued = _start(researcher, loop_body(pid, policy, policy))
    out = _post(researcher, queued["id"], "cancel")
    assert out["status"] == "cancelled"
    assert job_row(queued["job_id"])["status"] == "cancelled"
    assert run_job(queued["job_id"]) == "skipped"
    assert step_rows(queued["id"]) == [(1, "generate", "cancelled", queued["job_id"])]


def test_models_a_loop_uses_cannot_be_deleted_and_name_the_loop(
    setup: tuple[int, int, Actor], researcher: Actor, admin: Actor, tmp_path: Path
) -> None:
    pid, policy, _ = setup
    rm_base = register(admin, save_tiny_model(tmp_path / "rm", vocabulary()), "rm base")
    queued = _start(researcher, loop_body(pid, policy, rm_base))
    _post(researcher, queued["id"], "cancel")  # a finished loop still names its models
    for model in (policy, rm_base):
        r = admin.client.delete(f"/api/v1/models/{model}")
        assert r.status_code == 409 and r.json()["error"] == "model_in_use", r.text
        assert r.json()["loops"] == [queued["id"]], r.text
        assert f"loop {queued['id']}" in r.json()["detail"]
        assert admin.client.get(f"/api/v1/models/{model}").json()["used_by_loops"] == [queued["id"]]
    unused = register(admin, save_tiny_model(tmp_path / "unused", vocabulary()), "unused")
    assert admin.client.get(f"/api/v1/models/{unused}").json()["used_by_loops"] == []
    assert admin.client.delete(f"/api/v1/models/{unused}").status_code == 204


def _to_labels(loop_id: int, job_id: int) -> None:
    assert run_job(job_id) == "done"
    advance_all()
    assert step_rows(loop_id)[-1][1:3] == ("labels", "waiting")


def test_labels_missing_at_the_deadline_stop_the_loop_with_the_reason(
    setup: tuple[int, int, Actor], researcher: Actor
) -> None:
    pid, policy, annotator = setup
    stop = {"label_deadline_seconds": 1, "min_labels": 3}
    queued = _start(researcher, loop_body(pid, policy, policy, stop=stop))
    loop_id = queued["id"]
    _to_labels(loop_id, queued["job_id"])
    annotate(annotator, pid, gold_annotator(), limit=2)  # two of nine items labelled
    advance_all()
    assert loop_out(researcher, loop_id)["status"] == "running"  # before the deadline: waits
    time.sleep(1.2)
    advance_all()
    out = loop_out(researcher, loop_id)
    assert out["status"] == "stopped", out
    assert "at the label deadline only 2 of" in out["reason"] and "(minimum 3)" in out["reason"]
    assert step_rows(loop_id)[-1][1:3] == ("labels", "stopped")
    advance_all()
    assert len(step_rows(loop_id)) == 3  # nothing after a stop

    # Resume waits for labels again with a new deadline; late labels let the loop go on.
    out = _post(researcher, loop_id, "resume")
    assert out["status"] == "running" and out["reason"] is None
    assert step_rows(loop_id)[-1][1:3] == ("labels", "waiting")
    annotate(annotator, pid, gold_annotator(), limit=1)
    time.sleep(1.2)
    advance_all()
    assert step_rows(loop_id)[-1][1:3] == ("snapshot", "running")
    _post(researcher, loop_id, "cancel")
    r = researcher.client.post(f"/api/v1/loops/{loop_id}/resume")
    assert r.status_code == 409, r.text


def test_at_the_deadline_the_loop_goes_on_with_enough_labels_or_stops_by_rule(
    setup: tuple[int, int, Actor], researcher: Actor
) -> None:
    pid, policy, annotator = setup
    stop = {"label_deadline_seconds": 1, "min_labels": 2}
    queued = _start(researcher, loop_body(pid, policy, policy, stop=stop))
    loop_id = queued["id"]
    _to_labels(loop_id, queued["job_id"])
    annotate(annotator, pid, gold_annotator(), limit=2)
    time.sleep(1.2)
    advance_all()
    out = loop_out(researcher, loop_id)
    assert out["status"] == "running"
    labels = out["iterations"][0]["steps"][2]
    assert labels["status"] == "succeeded" and "went on with 2 of" in labels["detail"]["note"]
    assert step_rows(loop_id)[-1][1:3] == ("snapshot", "running")
    _post(researcher, loop_id, "cancel")

    # at_deadline "stop": however many labels there are.
    stop = {"label_deadline_seconds": 1, "min_labels": 1, "at_deadline": "stop"}
    queued = _start(researcher, loop_body(pid, policy, policy, stop=stop))
    _to_labels(queued["id"], queued["job_id"])
    annotate(annotator, pid, gold_annotator(), limit=2)
    time.sleep(1.2)
    advance_all()
    out = loop_out(researcher, queued["id"])
    assert out["status"] == "stopped" and "stop rule: stop" in out["reason"], out


def test_a_loop_on_a_prompt_set_samples_it_anew_each_iteration(
    setup: tuple[int, int, Actor], researcher: Actor
) -> None:
    pid, policy, annotator = setup
    prompts = [f"question {i} w{i}" for i in range(10)]
    r = researcher.client.post(
        f"/api/v1/projects/{pid}/prompt-sets", json={"name": "questions", "prompts": prompts}
    )
    assert r.status_code == 201, r.text
    set_id = r.json()["id"]
    body = loop_body(pid, policy, policy, prompt_set_id=set_id, prompts_per_iteration=3)
    del body["prompts"]
    queued = _start(researcher, body)
    params = job_row(queued["job_id"])["params"]
    assert params["prompt_set_id"] == set_id and len(params["prompt_indices"]) == 3
    _to_labels(queued["id"], queued["job_id"])
    out = loop_out(researcher, queued["id"])
    assert out["pending"]["items"] >= 1
    assert out["config"]["prompt_set_id"] == set_id and out["config"]["prompts"] is None
    _post(researcher, queued["id"], "cancel")
    # More per iteration than the set holds: refused.
    body["prompts_per_iteration"] = 11
    r = researcher.client.post("/api/v1/loops", json=body)
    assert r.status_code == 422 and "10 prompts of prompt set" in r.text, r.text
    del annotator


def test_a_routed_project_routes_each_iterations_items_before_they_wait_for_labels(
    setup: tuple[int, int, Actor], researcher: Actor, admin: Actor
) -> None:
    pid, policy, annotator = setup
    r = admin.client.post(
        "/api/v1/routing-policies",
        json={"name": "humans", "strategy": "all_human", "human_budget": 1000},
    )
    assert r.status_code == 201, r.text
    r = admin.client.put(f"/api/v1/projects/{pid}/routing", json={"policy_id": r.json()["id"]})
    assert r.status_code == 200, r.text
    queued = _start(researcher, loop_body(pid, policy, policy))
    loop_id = queued["id"]
    assert run_job(queued["job_id"]) == "done"
    advance_all()
    out = loop_out(researcher, loop_id)
    route = out["iterations"][0]["steps"][1]
    assert route["step"] == "route" and route["status"] == "running"
    assert job_row(route["job_id"])["kind"] == "routing.route"
    # Held items wait for their route: none can be labelled yet.
    assert annotate(annotator, pid, gold_annotator()) == []
    assert run_job(route["job_id"]) == "done"
    advance_all()
    out = loop_out(researcher, loop_id)
    assert out["iterations"][0]["steps"][1]["links"]["counts"]["human"] == out["pending"]["items"]
    assert out["pending"]["waiting_human"] == out["pending"]["items"] > 0
    assert len(annotate(annotator, pid, gold_annotator())) == out["pending"]["items"]
    advance_all()
    assert step_rows(loop_id)[-2:] == [
        (1, "labels", "succeeded", None),
        (1, "snapshot", "running", step_rows(loop_id)[-1][3]),
    ]
    _post(researcher, loop_id, "cancel")


def test_the_list_pages_newest_first_and_filters_by_project(
    setup: tuple[int, int, Actor], researcher: Actor
) -> None:
    pid, policy, _ = setup
    ids = [_start(researcher, loop_body(pid, policy, policy))["id"] for _ in range(3)]
    first = researcher.client.get("/api/v1/loops", params={"limit": 2, "project_id": pid}).json()
    assert [r["id"] for r in first["items"]] == ids[::-1][:2]
    rest = researcher.client.get(
        "/api/v1/loops", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert [r["id"] for r in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    other = researcher.client.get("/api/v1/loops", params={"project_id": pid + 1000}).json()
    assert other["items"] == []
