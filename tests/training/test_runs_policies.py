"""Policy runs through the platform: DPO, best-of-n and expert iteration queued by the API,
trained by the real task on a real snapshot, sampling through the inference registry's
`transformers` backend, scored by a reward model from the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.training.helpers import require_train_extra

pytestmark = pytest.mark.train
require_train_extra()

from pathlib import Path  # noqa: E402

from tests.helpers import Actor  # noqa: E402
from tests.judges.helpers import simulated  # noqa: E402
from tests.training.helpers import save_tiny_model, vocabulary  # noqa: E402
from tests.training.runs_helpers import (  # noqa: E402
    TINY,
    ProjectFactory,
    preference_project,
    register,
)
from tests.web.test_pages import _browser  # noqa: E402
from worker.tasks.jobs import run_job  # noqa: E402

SAMPLING = {"n": 2, "max_new_tokens": 4, "max_prompts": 3, "prompts_per_batch": 4}
EVAL = {"prompts": 2, "max_new_tokens": 4}


def _run(actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = actor.client.post("/api/v1/training-runs", json=body)
    assert r.status_code == 202, r.text
    queued = r.json()
    assert run_job(queued["job_id"]) == "done", actor.client.get(
        f"/api/v1/jobs/{queued['job_id']}"
    ).json()
    run: dict[str, Any] = actor.client.get(f"/api/v1/training-runs/{queued['id']}").json()
    assert run["status"] == "succeeded", run
    return run


def test_policy_kinds_register_policies_whose_lineage_names_the_reward_model(
    admin: Actor,
    researcher: Actor,
    project_factory: ProjectFactory,
    make_user: Callable[..., Actor],
    app_client_factory: Callable[[], httpx.Client],
    tmp_path: Path,
) -> None:
    base = register(admin, save_tiny_model(tmp_path / "base", vocabulary()))
    pid = preference_project(researcher, project_factory, make_user, n_items=12)
    common = {"project_id": pid, "base_model_id": base["id"]}
    rm_run = _run(
        researcher, {**common, "kind": "reward_model", "config": {"max_steps": 2, **TINY}}
    )
    rm = rm_run["model_version_id"]

    # The next runs reuse the first run's snapshot.
    snap = {"export_id": rm_run["export_id"], "base_model_id": base["id"], "reward_model_id": rm}
    bon = _run(researcher, {**snap, "kind": "best_of_n", "config": {"sampling": SAMPLING}})
    assert bon["model_version_id"] is None and "samples.parquet" in bon["artifact"]["files"]
    assert bon["metrics"]["prompts"] == 3 and bon["export_id"] == rm_run["export_id"]

    # SFT on the samples best_of_n kept (its `best` rows): the run reads that run's folder.
    sft_body = {
        "kind": "sft",
        "base_model_id": base["id"],
        "source_run_id": bon["id"],
        "config": {"source": "samples", "max_steps": 2, "evaluation": EVAL, **TINY},
    }
    for change, needle in [
        ({"source_run_id": None}, "set source_run_id"),
        ({"source_run_id": rm_run["id"]}, "is a reward_model run"),
        ({"project_id": pid}, "leave out project_id"),
        ({"config": {"source": "rewrites"}}, "source_run_id is for sft runs on samples"),
    ]:
        r = researcher.client.post("/api/v1/training-runs", json={**sft_body, **change})
        assert r.status_code == 422 and needle in r.text, (change, r.text)
    sft = _run(researcher, sft_body)
    assert sft["source_run_id"] == bon["id"] and sft["export_id"] == bon["export_id"]
    assert sft["metrics"]["train_examples"] + sft["metrics"].get("heldout_examples", 0) == 3
    version = researcher.client.get(f"/api/v1/models/{sft['model_version_id']}").json()
    assert version["kind"] == "policy" and version["parent_id"] == base["id"]

    ei = _run(
        researcher,
        {
            **snap,
            "kind": "expert_iteration",
            "config": {"max_steps": 2, "sampling": SAMPLING, "evaluation": EVAL, **TINY},
        },
    )
    judge = simulated(admin, name="gold judge", truth={"gold_reward": "on_topic"})
    dpo = _run(
        researcher,
        {
            **snap,
            "kind": "dpo",
            "config": {"max_steps": 2, "evaluation": {**EVAL, "judge_id": judge["id"]}, **TINY},
        },
    )
    # The judge compared both policies' samples on the held-out prompts, in both orders.
    m = dpo["metrics"]
    assert m["judge_pairs"] == m["eval_prompts"] == 2 and m["judge_unparsed"] == 0
    assert 0.0 <= m["judge_win_rate"] <= 1.0
    assert m["judge"]["id"] == judge["id"] and m["judge"]["template_version"] >= 1
    browser = _browser(app_client_factory, researcher)
    assert "judge_win_rate" in browser.get(f"/training/{dpo['id']}").text
    compare = browser.get(f"/training/compare?run={dpo['id']}&run={ei['id']}").text
    assert "Win rate against the parent by the judge" in compare
    page = browser.get(f"/training/{sft['id']}").text
    assert f'href="/training/{bon["id"]}" data-testid="run-source"' in page
    for run in (ei, dpo):
        version = researcher.client.get(f"/api/v1/models/{run['model_version_id']}").json()
        assert version["kind"] == "policy" and version["parent_id"] == base["id"]
        assert run["lineage"]["reward_model"]["id"] == rm
        assert "win_rate" in str(version["metrics"]) and "kl" in str(version["metrics"])
    # The reward model is in use by three runs: it stays.
    r = researcher.client.delete(f"/api/v1/models/{rm}")
    assert r.status_code == 409 and r.json()["runs"] == [bon["id"], ei["id"], dpo["id"]]
